"""What every dataset format offers: detection by file name, a reader and a writer.

Imported formats (CUHK-PEDES, ICFG-PEDES, RSTPReid, TBPS-CLIP) keep their images under `<root>/imgs/`, as
IRRA's readers expect (IRRA opens `<root_dir>/<irra_dir>/`); in memory a record's `image` is
`imgs/<file_path>` relative to the dataset root.
Person ids in memory count from 0 in every format; each format adds its own `id_base` on disk
(CUHK-PEDES counts from 1: IRRA subtracts 1 from its train ids).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol

from dp_cli.data.dataset import PersonDataset, PersonRecord, safe_relpath, validate_records
from dp_cli.errors import DataError

IMAGES_DIR = "imgs"


class DatasetFormat(Protocol):
    """A dataset format: its name, its annotation file name, and how to read and write it."""

    name: str
    filename: str
    splits: tuple[str, ...]

    def read(self, annotation_file: Path) -> PersonDataset: ...

    def write(self, dataset: PersonDataset, root: Path) -> Path: ...

    def target_image(self, record: PersonRecord) -> str: ...


def record_id_from_path(file_path: str) -> str:
    """The stable record id of an imported image: its path without suffix, '/' -> '__'."""
    stem = file_path.rsplit(".", 1)[0] if "." in file_path.rsplit("/", 1)[-1] else file_path
    return stem.replace("/", "__")


def strip_images_dir(image: str) -> str:
    """The path inside `imgs/` a TBPS annotation file stores (`imgs/a/b.jpg` -> `a/b.jpg`)."""
    return image[len(IMAGES_DIR) + 1:] if image.startswith(IMAGES_DIR + "/") else image


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokens(caption: str) -> list[str]:
    """Lower-case word tokens, like CUHK-PEDES' `processed_tokens`."""
    return _TOKEN.findall(caption.lower())


def read_json_list(path: Path) -> list[Any]:
    """A JSON file holding a list; malformed or missing files raise DataError naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno} ({exc.msg})",
                        hint="fix the file, or export it again") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    return data


class JsonListFormat:
    """The TBPS JSON-list formats read by IRRA: one entry per image with split, captions, path, id."""

    name = ""
    filename = ""
    path_key = "file_path"
    splits: tuple[str, ...] = ("train", "val", "test")
    id_base = 0
    keys: tuple[str, ...] = ("split", "captions", "file_path", "id")
    with_tokens = False
    irra_dir: str | None = None  # the folder IRRA's reader looks for under --root_dir

    def read(self, annotation_file: Path) -> PersonDataset:
        """Read the annotation file; records are validated and errors name the entry."""
        entries = read_json_list(annotation_file)
        records = [self._record(i, e, annotation_file) for i, e in enumerate(entries)]
        validate_records(records, str(annotation_file))
        return PersonDataset(annotation_file.parent, records, name=annotation_file.parent.name,
                             source_format=self.name)

    def _record(self, index: int, entry: Any, source: Path) -> PersonRecord:
        where = f"{source}: record {index}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        missing = [k for k in self.keys if k not in entry]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}",
                            hint=f"each {self.name} entry needs {', '.join(self.keys)}")
        rel = safe_relpath(entry[self.path_key], f"{where} ({self.path_key})")
        where = f"{source}: record {index} ({self.path_key} {rel!r})"
        pid = entry["id"]
        if isinstance(pid, bool) or not isinstance(pid, (int, str)) or not str(pid).lstrip("-").isdigit():
            raise DataError(f"{where}: id must be an integer person id, got {pid!r}")
        caps = entry["captions"]
        if isinstance(caps, str):
            caps = [caps]
        if not isinstance(caps, list) or not caps or any(not isinstance(c, str) or not c.strip() for c in caps):
            raise DataError(f"{where}: empty caption", hint="every image needs at least one non-empty caption")
        split = entry["split"]
        if split not in self.splits:
            raise DataError(f"{where}: unknown split {split!r}", hint=f"{self.name} splits are {', '.join(self.splits)}")
        return PersonRecord(id=record_id_from_path(rel), image=f"{IMAGES_DIR}/{rel}",
                            person_id=int(pid) - self.id_base, split=split, captions=[c.strip() for c in caps])

    def target_image(self, record: PersonRecord) -> str:
        """Where the record's image goes in this layout, relative to the output root."""
        return f"{IMAGES_DIR}/{strip_images_dir(record.image)}"

    def entry(self, record: PersonRecord) -> dict[str, Any]:
        """The on-disk entry of one record."""
        row: dict[str, Any] = {"split": record.split, "captions": list(record.captions),
                               self.path_key: strip_images_dir(record.image),
                               "id": record.person_id + self.id_base}
        if self.with_tokens:
            row["processed_tokens"] = [tokens(c) for c in record.captions]
        return row

    def write(self, dataset: PersonDataset, root: Path) -> Path:
        """Write the annotation file (atomically); images are placed by the exporter."""
        from dp_cli.fsutil import write_json_atomic

        for rec in dataset.records:
            if rec.split not in self.splits:
                raise DataError(f"record {rec.id!r}: split {rec.split!r} cannot be written as {self.name}",
                                hint=f"{self.name} splits are {', '.join(self.splits)}; export another format")
        target = root / self.filename
        write_json_atomic(target, [self.entry(r) for r in dataset.records], indent=None)
        return target
