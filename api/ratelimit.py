"""Per-client token buckets for the public routes (in memory, per API process)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]

MAX_CLIENTS = 50_000


class RateLimiter:
    """``per_minute`` requests per client, in bursts of up to ``per_minute``; 0 turns limiting off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] | None = None) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock or time.monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)

    def check(self, client: str) -> float:
        """Takes a token for ``client``; returns 0 when allowed, else the seconds until the next token."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self._rate
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > MAX_CLIENTS:
            self._prune(now)
        return 0.0

    def _prune(self, now: float) -> None:
        full_after = 60.0  # a bucket untouched for a minute is full again: forgetting it changes nothing
        self._buckets = {c: v for c, v in self._buckets.items() if now - v[1] < full_after}
