"""Throughput of `dp annotate` (openai backend) against the local fake server with a fixed latency.

Prints achieved records/s over the ideal concurrency/latency (target >= 0.8 without faults), the same
with a share of injected 429/500 answers, and the client's CPU time per request.

    .venv/bin/python benchmarks/annotate_throughput.py [--requests 5000] [--latency 0.05] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dp_cli.annotate.config import AnnotateConfig  # noqa: E402
from dp_cli.annotate.runner import run  # noqa: E402


def start_server(latency: float, fault_rate: float) -> tuple[subprocess.Popen, str]:
    """The fake OpenAI server in its own process, so its CPU is not counted as the client's."""
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/annotate/fake_openai.py"), "--latency", str(latency),
                             "--fault-rate", str(fault_rate)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def raw_ceiling(n: int, latency: float, concurrency: int) -> float:
    """Requests/s of a bare httpx2 client (no dp, no openai) on the same server: what this machine allows."""
    import asyncio

    import httpx2

    proc, url = start_server(latency, 0.0)
    body = {"model": "m", "messages": [{"role": "user", "content": "Sentence: A man wears a black shirt.\n"
                                                                    "Attributes: red jacket"}]}

    async def go() -> float:
        left = n
        async with httpx2.AsyncClient(limits=httpx2.Limits(max_connections=concurrency)) as client:
            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await client.post(url + "/chat/completions", json=body)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - t0)

    try:
        return asyncio.run(go())
    finally:
        proc.terminate()
        proc.wait()


def one_run(n: int, latency: float, concurrency: int, fault_rate: float) -> dict:
    proc, url = start_server(latency, fault_rate)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            inp = Path(tmp) / "in.jsonl"
            inp.write_text("".join(json.dumps({"id": str(i), "base_description": f"A man number {i} wears a black "
                                               "shirt and grey pants.", "reference_attribute_list": ["red jacket"]})
                                   + "\n" for i in range(n)))
            cfg = AnnotateConfig(input=inp, output=Path(tmp) / "out.jsonl", base_url=url, concurrency=concurrency,
                                 slice_step=0, max_retries=4, timeout=30)
            cpu0, t0 = time.process_time(), time.perf_counter()
            result = run(cfg)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        proc.terminate()
        proc.wait()
    s = result.stats
    ideal = concurrency / latency
    return {"fault_rate": fault_rate, "done": s.done, "failed": s.failed, "http_requests": s.requests,
            "seconds": round(wall, 2), "records_per_s": round(s.done / wall, 1), "ideal_per_s": round(ideal, 1),
            "ratio": round(s.done / wall / ideal, 3), "http_ratio": round(s.requests / wall / ideal, 3),
            "client_cpu_ms_per_request": round(1000 * cpu / max(s.requests, 1), 3),
            "rate_limited": s.rate_limited, "server_errors": s.server_errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--fault-rate", type=float, default=0.1, help="share of 429/500 answers in the second run")
    args = ap.parse_args()
    ceiling = raw_ceiling(min(args.requests, 2000), args.latency, args.concurrency)
    ideal = args.concurrency / args.latency
    print(f"machine ceiling: a bare httpx2 client reaches {ceiling:.1f} req/s = {ceiling / ideal:.3f} of ideal "
          f"{ideal:.0f} req/s on this server and machine", flush=True)
    for rate in (0.0, args.fault_rate):
        r = one_run(args.requests, args.latency, args.concurrency, rate)
        print(f"faults {rate:.0%}: {r['done']} done, {r['failed']} failed in {r['seconds']} s; "
              f"{r['records_per_s']} records/s vs ideal C/latency {r['ideal_per_s']} -> ratio {r['ratio']} "
              f"(HTTP requests ratio {r['http_ratio']}; 429 {r['rate_limited']}, 5xx {r['server_errors']}); "
              f"client CPU {r['client_cpu_ms_per_request']} ms/request; "
              f"vs bare client {r['records_per_s'] / ceiling:.3f}", flush=True)
        print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
