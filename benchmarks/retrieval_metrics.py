"""dp's chunked retrieval metrics against a straightforward full-argsort implementation.

Run: .venv/bin/python benchmarks/retrieval_metrics.py [--queries 20000] [--gallery 20000] [--dim 512]
Random embeddings around person centres (each person has --per-id gallery images and about as many
queries), both implementations in the same run on the same inputs: wall time, peak memory above the
inputs (Linux VmHWM after resetting it through /proc/self/clear_refs; tracemalloc elsewhere, which
misses torch's allocations) and the numbers, which must be identical. Targets: >= 3x faster, <= 1/4
of the memory. The full-argsort side needs about 6 GB at 20,000 x 20,000.
"""

from __future__ import annotations

import argparse
import gc
import math
import re
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dp_cli.eval.retrieval import _summarise, normalize, retrieval_metrics  # noqa: E402


def full_argsort_metrics(q, q_ids, g, g_ids, ks=(1, 5, 10)):
    """IRRA's rank(): full similarity matrix, full (stable) descending argsort, hits read off the sorted rows."""
    sim = normalize(q) @ normalize(g).T
    order = torch.argsort(sim, dim=1, descending=True, stable=True)
    del sim
    q_t, g_t = torch.as_tensor(q_ids), torch.as_tensor(g_ids)
    matches = g_t[order].eq(q_t.view(-1, 1))
    del order
    keep = matches.any(1)
    matches = matches[keep]
    rows, cols = matches.nonzero(as_tuple=True)  # row-major: each row's hits in rank order
    del matches
    num_rel = torch.bincount(rows, minlength=int(keep.sum()))
    row_start = torch.cumsum(num_rel, 0) - num_rel
    hit_no = torch.arange(len(rows)) - row_start[rows] + 1  # 1, 2, ... within each row
    ap = torch.zeros(len(num_rel), dtype=torch.float64).index_add_(0, rows, hit_no.double() / (cols + 1).double())
    ap /= num_rel
    first = cols[row_start]
    inp = num_rel.double() / (cols[row_start + num_rel - 1] + 1).double()
    uniq = np.unique(np.concatenate([q_ids, g_ids]))
    missing = np.searchsorted(uniq, np.asarray(q_ids)[~keep.numpy()])
    return _summarise([first.numpy()], [ap.numpy()], [inp.numpy()], ks, 50, len(q_ids), g.shape[0],
                      missing=missing, uniq=uniq)


def _hwm_kb() -> int | None:
    try:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    except (OSError, AttributeError):
        return None


def _rss_kb() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def measure(fn):
    """(result, seconds, peak bytes above the memory in use before the call)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        use_proc = _hwm_kb() is not None
    except OSError:
        use_proc = False
    if use_proc:
        base = _rss_kb()
    else:
        tracemalloc.start()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    if use_proc:
        peak = (_hwm_kb() - base) * 1024
    else:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def make_inputs(nq: int, ng: int, dim: int, per_id: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    persons = max(1, ng // per_id)
    centres = torch.randn(persons, dim, generator=gen)
    g_ids = np.repeat(np.arange(persons), per_id)[:ng]
    g_ids = np.concatenate([g_ids, np.arange(ng - len(g_ids)) % persons])
    q_ids = np.sort(torch.randint(0, persons, (nq,), generator=gen).numpy())
    g = centres[torch.as_tensor(g_ids)] + 3.0 * torch.randn(ng, dim, generator=gen)
    q = centres[torch.as_tensor(q_ids)] + 3.0 * torch.randn(nq, dim, generator=gen)
    return q, q_ids, g, g_ids


def same(a, b) -> bool:
    da, db = a.to_dict(), b.to_dict()
    for key in da:
        x, y = da[key], db[key]
        if isinstance(x, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif key == "cmc":
            if not np.allclose(x, y, rtol=0, atol=1e-9):
                return False
        elif x != y:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--gallery", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--per-id", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    q, q_ids, g, g_ids = make_inputs(args.queries, args.gallery, args.dim, args.per_id, args.seed)
    print(f"{args.queries} queries x {args.gallery} gallery, dim {args.dim}, {args.per_id} images per id, "
          f"{torch.get_num_threads()} torch threads")
    fast, t_fast, m_fast = measure(lambda: retrieval_metrics(q, q_ids, g, g_ids, chunk=args.chunk))
    full, t_full, m_full = measure(lambda: full_argsort_metrics(q, q_ids, g, g_ids))
    for name, m, t, mem in (("dp chunked", fast, t_fast, m_fast), ("full argsort", full, t_full, m_full)):
        ranks = " ".join(f"R{k} {v:.4f}" for k, v in m.rank.items())
        print(f"{name:>13}: {t:7.2f} s  peak +{mem / 2**20:8.1f} MiB  {ranks}  mAP {m.mAP:.6f}  mINP {m.mINP:.6f}")
    print(f"identical numbers: {same(fast, full)}")
    print(f"speed-up: {t_full / t_fast:.1f}x (target >= 3x)   memory: 1/{m_full / max(m_fast, 1):.1f} "
          f"(target <= 1/4)")


if __name__ == "__main__":
    main()
