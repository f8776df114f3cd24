"""TBPS-CLIP: one JSON list per split, `train_reid.json` and `test_reid.json` (plus `val_reid.json` when
there are val records), each entry {file_path, id, captions} and optionally `captions_bt`.

As read by Flame-Chasers/TBPS-CLIP `misc/caption_dataset.py` (`ps_train_dataset`, `ps_eval_dataset`):
`<anno_dir>/<split>_reid.json`, the image at `<image_dir>/<file_path>`; the train reader renumbers ids by
first appearance, the test reader compares them as they are; `captions_bt` (back-translated captions,
one per caption) is optional. TBPS-CLIP reads only train and test. Here images live under `imgs/`, so
`anno_dir` is the dataset root and `image_dir` is `<root>/imgs`. Person ids count from 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dp_cli.data.dataset import PersonDataset, PersonRecord, validate_records
from dp_cli.data.formats.base import JsonListFormat, read_json_list
from dp_cli.errors import DataError

SUFFIX = "_reid.json"
BACK_TRANSLATED = "captions_bt"  # kept in `extra` so that a TBPS-CLIP -> TBPS-CLIP export keeps it


class TbpsClipFormat(JsonListFormat):
    name = "tbps-clip"
    filename = "train" + SUFFIX
    filenames = tuple(f"{s}{SUFFIX}" for s in ("train", "val", "test"))
    splits = ("train", "val", "test")
    keys = ("file_path", "id", "captions")
    id_base = 0

    def read(self, annotation_file: Path) -> PersonDataset:
        """Read every `<split>_reid.json` beside `annotation_file` (any of them may be named)."""
        root = annotation_file.parent
        if not annotation_file.is_file():
            read_json_list(annotation_file)  # the usual "annotation file not found"
        records: list[PersonRecord] = []
        for split in self.splits:
            path = root / f"{split}{SUFFIX}"
            if path.is_file():
                records += [self._split_record(i, e, path, split) for i, e in enumerate(read_json_list(path))]
        validate_records(records, str(root / self.filename))
        return PersonDataset(root, records, name=root.name, source_format=self.name)

    def _split_record(self, index: int, entry: Any, source: Path, split: str) -> PersonRecord:
        if isinstance(entry, dict) and "split" in entry and entry["split"] != split:
            raise DataError(f"{source}: record {index}: split {entry['split']!r} in the {split} file",
                            hint=f"{self.name} takes the split from the file name")
        record = self._record(index, {**entry, "split": split} if isinstance(entry, dict) else entry, source)
        back = entry.get(BACK_TRANSLATED)
        if isinstance(back, list) and len(back) == len(record.captions) and all(isinstance(c, str) for c in back):
            record.extra = {BACK_TRANSLATED: back}
        return record

    def entry(self, record: PersonRecord) -> dict[str, Any]:
        row = super().entry(record)
        del row["split"]
        back = record.extra.get(BACK_TRANSLATED)
        if isinstance(back, list) and len(back) == len(record.captions):
            row[BACK_TRANSLATED] = list(back)
        return row

    def write(self, dataset: PersonDataset, root: Path) -> Path:
        """Write train_reid.json and test_reid.json (always) and val_reid.json (when there are val records)."""
        from dp_cli.fsutil import write_json_atomic

        by_split: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
        for rec in dataset.records:
            if rec.split not in self.splits:
                raise DataError(f"record {rec.id!r}: split {rec.split!r} cannot be written as {self.name}",
                                hint=f"{self.name} splits are {', '.join(self.splits)}; export another format")
            by_split.setdefault(rec.split, []).append(self.entry(rec))
        for split, rows in by_split.items():
            write_json_atomic(root / f"{split}{SUFFIX}", rows, indent=None)
        return root / self.filename
