"""Annotate input: read JSONL (file or stdin), normalise records, select the range, slice, key."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, TextIO

from dp_cli.data.handoff import EditRow, parse_edit_rows
from dp_cli.errors import DataError

NEEDED = ("base_description", "reference_attribute_list")  # what a line needs; the rest of an edit row is optional


@dataclass(frozen=True)
class Attribute:
    """One reference attribute: its label ('white skirt') and type ('bottomcloth'), when known."""

    label: str
    type: str | None = None


@dataclass
class Item:
    """One record to annotate."""

    index: int  # position among the input's records (0-based)
    id: str
    description: str
    attributes: tuple[Attribute, ...]
    source_dataset: str | None = None
    key: str = ""
    failed_edit: bool = False  # `dp edit`'s verifier failed this edit (status "failed"): not asked by default

    @property
    def labels(self) -> list[str]:
        return [a.label for a in self.attributes]


@dataclass
class Plan:
    """The selected items cut into slices."""

    items: list[Item]
    slices: list[tuple[int, int]] = field(default_factory=list)  # [start, end) record indexes
    read: int = 0  # records in the input, selected or not


def read_input(path: Path | str, stream: TextIO | None = None) -> list[Item]:
    """All records of a JSONL file, or of `stream` (stdin) when path is '-'."""
    if str(path) == "-":
        stream = stream or sys.stdin
        return _items(getattr(stream, "buffer", stream), "<stdin>")  # bytes: a decoding error names its line
    p = Path(path)
    if not p.is_file():
        what = "is a folder, not an input file" if p.is_dir() else "input file not found"
        raise DataError(f"{p}: {what}", hint="pass --input edits.jsonl (from `dp edit`) or '-'")
    with open(p, "rb") as fh:
        return _items(fh, str(p))


def _items(lines: Iterable[str | bytes], name: str) -> list[Item]:
    return [item_of(row, k) for k, row in enumerate(parse_edit_rows(lines, name, NEEDED))]


def parse_record(obj: dict[str, Any], index: int, where: str) -> Item:
    """One input object -> Item; errors name the line and field."""
    return item_of(EditRow.from_json(obj, where, NEEDED), index)


def item_of(row: EditRow, index: int) -> Item:
    """The Item of an edit row (its id, else its position among the input's records)."""
    attrs = tuple(Attribute(r.label, r.type) for r in row.references)
    return Item(index, row.id or str(index), row.base_description.strip(), attrs, row.source_dataset,
                failed_edit=row.failed)


def select(items: list[Item], text_start: int, text_end: int, slice_step: int) -> Plan:
    """Records [text_start, text_end) (text_end -1 = through the last), cut into slices of slice_step."""
    end = len(items) if text_end == -1 else min(text_end, len(items))
    start = min(text_start, end)
    step = slice_step if slice_step > 0 else max(1, end - start)
    slices = [(s, min(s + step, end)) for s in range(start, end, step)]
    return Plan(items[start:end], slices)


def item_key(item: Item, model: str, prompt_version: str, params: dict[str, Any]) -> str:
    """Stable hash of (model, prompt version, input record, parameters)."""
    material = {
        "model": model, "prompt": prompt_version, "params": params,
        "record": {"id": item.id, "description": item.description,
                   "attributes": [[a.label, a.type] for a in item.attributes]},
    }
    blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
