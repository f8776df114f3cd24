"""The one in-memory person dataset model (DESIGN.md section 2): records, the dataset, path checks.

The on-disk formats read and write it: the native one in `dp_cli/data/formats/native.py`.
"""

from __future__ import annotations

import os
import posixpath
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from dp_cli.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class PersonRecord:
    """One image of one person with its descriptions."""

    id: str
    image: str  # POSIX path relative to the dataset root
    person_id: int
    split: str
    captions: list[str]
    parsing: str | None = None  # POSIX path of a label-map PNG, relative to the root
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        row = {"id": self.id, "image": self.image, "person_id": self.person_id, "split": self.split,
               "captions": self.captions}
        if self.parsing is not None:
            row["parsing"] = self.parsing
        if self.extra:
            row["extra"] = self.extra
        return row


@dataclass
class PersonDataset:
    """Records plus the folder their relative paths live in."""

    root: Path
    records: list[PersonRecord]
    label_set: str = "atr"
    name: str = ""
    source_format: str = "dp-native"  # formats.native.NATIVE_FORMAT (a test checks they agree)

    def image_path(self, record: PersonRecord) -> Path:
        """The record's image file; DataError when a symlink takes it out of the dataset folder."""
        return resolve_inside(self.root, record.image, f"record {record.id!r} image")

    def parsing_path(self, record: PersonRecord) -> Path | None:
        """The record's label map file (None without one); checked like `image_path`."""
        return resolve_inside(self.root, record.parsing, f"record {record.id!r} parsing map") \
            if record.parsing else None

    def split(self, name: str) -> list[PersonRecord]:
        return [r for r in self.records if r.split == name]

    def by_id(self) -> dict[str, PersonRecord]:
        return {r.id: r for r in self.records}

    def counts(self) -> dict[str, dict[str, int]]:
        """Images, persons and captions per split."""
        out: dict[str, dict[str, int]] = {}
        for s in SPLITS:
            recs = self.split(s)
            if recs:
                out[s] = {"images": len(recs), "persons": len({r.person_id for r in recs}),
                          "captions": sum(len(r.captions) for r in recs)}
        return out


def safe_relpath(path: str, where: str) -> str:
    """Normalise a dataset-relative path; raise DataError when it is absolute or escapes the root."""
    if not isinstance(path, str) or not path.strip():
        raise DataError(f"{where}: image path is empty")
    p = path.replace("\\", "/")
    norm = posixpath.normpath(p)
    if p.startswith("/") or (len(p) > 1 and p[1] == ":") or norm == ".." or norm.startswith("../"):
        raise DataError(f"{where}: path {path!r} escapes the dataset folder",
                        hint="paths must be relative and stay inside the dataset folder")
    return norm


def resolve_inside(root: Path, rel: str, where: str) -> Path:
    """The file `rel` under `root` with every symlink followed. DataError naming `where` when it lands
    outside `root` (a link would bring an outside file in) or is not a regular file; a missing file is
    returned as it is, for the caller to report."""
    path = Path(root) / rel
    real, base = Path(os.path.realpath(path)), Path(os.path.realpath(root))
    if base not in real.parents:
        raise DataError(f"{where}: {path} leads to {real}, outside the folder {base}",
                        hint="copy the file into the folder; dp does not follow links out of a dataset or catalog")
    if not real.exists():
        return path
    if not real.is_file():
        raise DataError(f"{where}: {path} is not a regular file", hint="point the record at an image file")
    return real


def validate_records(records: list[PersonRecord], source: str) -> None:
    """Duplicate ids, unknown splits and empty captions are errors naming the record."""
    if not records:
        raise DataError(f"{source}: dataset is empty", hint="check the file, or build one with `dp toy`")
    seen: set[str] = set()
    for rec in records:
        where = f"{source}: record {rec.id!r}"
        if rec.id in seen:
            raise DataError(f"{where}: duplicate id", hint="ids must be unique")
        seen.add(rec.id)
        if rec.split not in SPLITS:
            raise DataError(f"{where}: unknown split {rec.split!r}", hint=f"use one of {', '.join(SPLITS)}")
        if not rec.captions or any(not isinstance(c, str) or not c.strip() for c in rec.captions):
            raise DataError(f"{where}: empty caption", hint="every image needs at least one non-empty caption")


def split_summary(records: Iterable[PersonRecord]) -> dict[str, int]:
    """Images per split."""
    return dict(Counter(r.split for r in records))
