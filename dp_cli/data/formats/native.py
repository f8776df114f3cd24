"""The native dp format: `annotations.jsonl` (one image per line) and `dataset.json` (header).

Native layout: `<root>/annotations.jsonl` (one image per line: id, image, person_id, split, captions,
parsing?, extra?) and `<root>/dataset.json` (header: format, version, label_set, name). See
docs/FORMATS.md. The only format that carries record ids, parsing maps and `extra` as they are; all
reading and writing of it lives here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dp_cli.data.dataset import SPLITS, PersonDataset, PersonRecord, safe_relpath, validate_records
from dp_cli.errors import DataError
from dp_cli.fsutil import read_jsonl, write_json_atomic, write_jsonl_atomic

NATIVE_ANNOTATIONS = "annotations.jsonl"
NATIVE_HEADER = "dataset.json"
NATIVE_FORMAT = "dp-native"


def record_from_native(obj: dict[str, Any], where: str) -> PersonRecord:
    """Build a record from one native JSON line; raises DataError naming the line."""
    missing = [k for k in ("id", "image", "person_id", "split", "captions") if k not in obj]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        pid = int(obj["person_id"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: person_id must be an integer, got {obj['person_id']!r}") from None
    caps = obj["captions"]
    if isinstance(caps, str):
        caps = [caps]
    if not isinstance(caps, list):
        raise DataError(f"{where}: captions must be a list of strings")
    rid = str(obj["id"])
    parsing = obj.get("parsing")
    return PersonRecord(
        id=rid, image=safe_relpath(obj["image"], f"{where} (id {rid!r})"), person_id=pid,
        split=str(obj["split"]), captions=[c.strip() if isinstance(c, str) else c for c in caps],
        parsing=safe_relpath(parsing, f"{where} (id {rid!r}) parsing") if parsing else None,
        extra=obj.get("extra") or {})


def load_native(root: Path) -> PersonDataset:
    """Read `<root>/annotations.jsonl` (+ header) into a validated dataset."""
    ann = root / NATIVE_ANNOTATIONS
    if not ann.exists():
        raise DataError(f"{ann}: not found", hint="a native dataset folder holds annotations.jsonl")
    return NativeFormat().read(ann)


def read_header(root: Path) -> dict[str, Any]:
    """The native header, or defaults when absent."""
    path = root / NATIVE_HEADER
    if not path.exists():
        return {"format": NATIVE_FORMAT, "version": 1, "label_set": "atr"}
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON ({exc.msg})") from None
    from dp_cli.data.attributes import LABEL_SETS

    if header.get("label_set", "atr") not in LABEL_SETS:
        raise DataError(f"{path}: unknown label_set {header.get('label_set')!r}",
                        hint=f"use one of {', '.join(LABEL_SETS)}")
    return header


def native_header(label_set: str, name: str, **extra: Any) -> dict[str, Any]:
    """The contents of `dataset.json`; `extra` keys (a toy world's `generator`) follow the four fixed ones."""
    return {"format": NATIVE_FORMAT, "version": 1, "label_set": label_set, "name": name, **extra}


def header_for(dataset: PersonDataset) -> dict[str, Any]:
    return native_header(dataset.label_set, dataset.name)


class NativeFormat:
    name = "native"
    filename = NATIVE_ANNOTATIONS
    splits = SPLITS

    def read(self, annotation_file: Path) -> PersonDataset:
        """Read one JSON object per line; errors name the file and line."""
        if not annotation_file.is_file():
            raise DataError(f"{annotation_file}: annotation file not found")
        root = annotation_file.parent
        header = read_header(root)
        records = [record_from_native(obj, f"{annotation_file}:{lineno}")
                   for lineno, obj in read_jsonl(annotation_file)]
        validate_records(records, str(annotation_file))
        return PersonDataset(root, records, label_set=header.get("label_set", "atr"),
                             name=header.get("name") or root.name, source_format=NATIVE_FORMAT)

    def target_image(self, record: PersonRecord) -> str:
        return record.image

    def write(self, dataset: PersonDataset, root: Path) -> Path:
        """Write `annotations.jsonl` and `dataset.json` atomically."""
        target = root / self.filename
        write_jsonl_atomic(target, (r.to_json() for r in dataset.records))
        write_json_atomic(root / NATIVE_HEADER, header_for(dataset))
        return target
