"""The native dp format: `annotations.jsonl` (one image per line) and `dataset.json` (header).

See docs/FORMATS.md. The only format that carries record ids, parsing maps and `extra` as they are.
"""

from __future__ import annotations

from pathlib import Path

from dp_cli.data.dataset import (NATIVE_ANNOTATIONS, NATIVE_FORMAT, NATIVE_HEADER, SPLITS, PersonDataset,
                                 PersonRecord, header_for, read_header, record_from_native, validate_records)
from dp_cli.errors import DataError
from dp_cli.fsutil import read_jsonl


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
        from dp_cli.fsutil import write_json_atomic, write_jsonl_atomic

        target = root / self.filename
        write_jsonl_atomic(target, (r.to_json() for r in dataset.records))
        write_json_atomic(root / NATIVE_HEADER, header_for(dataset))
        return target


