"""Time `load_dataset` on 80,000 synthetic records in every format (annotation files only, no images).

Run: .venv/bin/python benchmarks/load_dataset.py [--records 80000]
Prints seconds per format and per 10,000 records; the goal is well under 1 s per 10,000.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dp_cli.data.loading import load_dataset  # noqa: E402

CAPTION = ("A woman with long black hair is wearing a white short-sleeved t-shirt, blue jeans "
           "and white sneakers, carrying a black bag.")


def write_synthetic(root: Path, fmt: str, n: int) -> Path:
    """An annotation file of `fmt` with `n` records, 2 captions each, ~3 images per person."""
    root.mkdir(parents=True, exist_ok=True)
    split = lambda i: "train" if i < n * 0.8 else ("val" if i < n * 0.9 else "test")  # noqa: E731
    if fmt == "native":
        with open(root / "annotations.jsonl", "w") as fh:
            for i in range(n):
                fh.write(json.dumps({"id": f"r{i}", "image": f"images/{i // 3}/{i}.png", "person_id": i // 3,
                                     "split": split(i), "captions": [CAPTION, CAPTION[:60]]}) + "\n")
        return root / "annotations.jsonl"
    key, name, base = {"cuhk-pedes": ("file_path", "reid_raw.json", 1),
                       "rstpreid": ("img_path", "data_captions.json", 0)}[fmt]
    rows = [{"split": split(i), "captions": [CAPTION, CAPTION[:60]], key: f"cam{i % 6}/{i // 3:05d}_{i}.jpg",
             "id": i // 3 + base} for i in range(n)]
    (root / name).write_text(json.dumps(rows))
    return root / name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=80_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("native", "cuhk-pedes", "rstpreid"):
            path = write_synthetic(Path(tmp) / fmt, fmt, args.records)
            start = time.perf_counter()
            ds = load_dataset(path)
            took = time.perf_counter() - start
            assert len(ds.records) == args.records
            print(f"{fmt:11s} {args.records} records: {took:.3f} s "
                  f"({took / args.records * 10_000:.3f} s per 10,000)")


if __name__ == "__main__":
    main()
