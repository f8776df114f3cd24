"""Counters of an annotate run, and the cost estimate for known models."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

# USD per 1M tokens (input, output), list prices; the Batch API costs half.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00), "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-4.1": (2.00, 8.00), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
}


@dataclass
class Stats:
    """Live counters; the runner updates them, the command renders them."""

    total: int = 0  # records selected
    skipped: int = 0  # already finished before this run
    failed_edits: int = 0  # edits that failed `dp edit`'s verifier: not asked (nothing paid for them)
    done: int = 0
    failed: int = 0
    unreachable: int = 0  # records whose every attempt got no connection: left for the next run, not failed
    in_flight: int = 0
    retries: int = 0  # items asked again after a rejected answer or exhausted client retries
    http_retries: int = 0  # retries made by the client itself (429, 5xx, timeouts)
    rate_limited: int = 0  # 429 responses seen
    server_errors: int = 0  # 5xx responses seen
    rejections: Counter = field(default_factory=Counter)  # answers that came back and were rejected, by reason
    api_errors: Counter = field(default_factory=Counter)  # attempts that got no usable answer (timeout, 429, ...)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # HTTP requests sent, retries included (answered or not)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # set by `stop` when the run is over: what a later summary reports

    def stop(self) -> None:
        self.ended = time.monotonic()

    @property
    def elapsed(self) -> float:
        return max((self.ended or time.monotonic()) - self.started, 1e-9)

    @property
    def req_per_s(self) -> float:
        return self.requests / self.elapsed

    @property
    def tokens_per_s(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.elapsed

    def status_line(self) -> str:
        return (f"done {self.done} · failed {self.failed} · in flight {self.in_flight} · "
                f"{self.req_per_s:.1f} req/s · {self.tokens_per_s:.0f} tok/s")


def estimate_cost(model: str, prompt_tokens: int, completion_tokens: int, batch: bool = False) -> float | None:
    """Estimated USD for a known model (longest matching name prefix), None when unknown."""
    name = model.split("/")[-1].lower()
    known = [m for m in PRICES if name == m or name.startswith(m + "-")]
    if not known:
        return None
    pin, pout = PRICES[max(known, key=len)]
    cost = (prompt_tokens * pin + completion_tokens * pout) / 1e6
    return cost / 2 if batch else cost
