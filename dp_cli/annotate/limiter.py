"""Bounded, adaptive concurrency: AIMD on 429s, capped by the server's remaining-requests header."""

from __future__ import annotations

import asyncio
import time


class AdaptiveLimiter:
    """At most `limit` holders at once; `limit` halves-ish on rate limits and grows back by ~1 per round trip."""

    def __init__(self, max_limit: int, min_limit: int = 1, decrease: float = 0.7, cooldown: float = 1.0):
        self.max_limit = max_limit
        self.min_limit = min(min_limit, max_limit)
        self.limit = float(max_limit)
        self.decrease = decrease
        self.cooldown = cooldown  # at most one cut per window, so one burst of 429s is one signal
        self.in_flight = 0
        self.cuts = 0
        self._last_cut = -1e9
        self._latency = 0.0
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # created lazily inside the running loop
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> None:
        """Wait for a free slot and take it."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < max(self.min_limit, int(self.limit)))
            self.in_flight += 1

    async def release(self) -> None:
        """Give a slot back."""
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify(max(1, int(self.limit) - self.in_flight))

    async def __aenter__(self) -> "AdaptiveLimiter":
        await self.acquire()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.release()

    def on_success(self, latency: float | None = None) -> None:
        """Additive increase: +1 per `limit` successes (about one per round trip)."""
        self.limit = min(float(self.max_limit), self.limit + 1.0 / max(self.limit, 1.0))
        if latency is not None:
            self._latency = latency if self._latency == 0 else 0.9 * self._latency + 0.1 * latency

    def on_rate_limited(self) -> None:
        """Multiplicative decrease, once per cooldown window (max of `cooldown` and two round trips)."""
        now = time.monotonic()
        if now - self._last_cut >= max(self.cooldown, 2 * self._latency):
            self.limit = max(float(self.min_limit), self.limit * self.decrease)
            self._last_cut = now
            self.cuts += 1

    def on_remaining(self, remaining: int) -> None:
        """The server says only `remaining` requests are left in its window: do not exceed that."""
        if remaining < self.limit:
            self.limit = max(float(self.min_limit), float(remaining))
