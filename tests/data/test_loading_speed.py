"""Loading stays well under a second per 10,000 records (the benchmark does 80,000)."""

import importlib.util
import time
from pathlib import Path

from dp_cli.data.loading import load_dataset

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "load_dataset.py"


def _bench():
    spec = importlib.util.spec_from_file_location("load_dataset_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loading_20000_records_is_fast(tmp_path):
    bench = _bench()
    for fmt in ("native", "cuhk-pedes"):
        path = bench.write_synthetic(tmp_path / fmt, fmt, 20_000)
        start = time.process_time()  # CPU time: robust to a busy shared machine
        ds = load_dataset(path)
        took = time.process_time() - start
        assert len(ds.records) == 20_000
        assert len({r.person_id for r in ds.split("train")}) == 16_000 // 3 + 1
        assert took < 2.0, f"{fmt}: {took:.2f} s for 20,000 records (goal: well under 1 s per 10,000)"
