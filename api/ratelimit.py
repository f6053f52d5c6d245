"""Per-client token buckets (in memory, per API process): the public routes' request rate, and failed key
attempts.

The buckets sit in an insertion-ordered dict kept in order of last use (a used bucket moves to the end), so the
stalest bucket is always first. Each request forgets, from the front, buckets untouched for a minute (full again:
forgetting them changes nothing) and, beyond ``max_clients``, the stalest: O(1) amortised per request, however many
clients there are.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MAX_CLIENTS", "RateLimiter"]

MAX_CLIENTS = 50_000
FULL_AFTER_S = 60.0


class RateLimiter:
    """``per_minute`` tokens per client, in bursts of up to ``per_minute``; 0 turns limiting off."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] | None = None, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._rate = per_minute / 60.0
        self._clock = clock or time.monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, last time)

    def _tokens(self, client: str, now: float) -> float:
        tokens, last = self._buckets.get(client, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - last) * self._rate)

    def wait(self, client: str) -> float:
        """Seconds until ``client`` has a token (0 when it has one now); takes nothing."""
        if self.per_minute <= 0:
            return 0.0
        tokens = self._tokens(client, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._rate

    def check(self, client: str) -> float:
        """Takes a token for ``client``; returns 0 when allowed, else the seconds until the next token."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        tokens = self._tokens(client, now)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        self._buckets.move_to_end(client)
        self._forget(now)
        return 0.0 if allowed else (1.0 - tokens) / self._rate

    def _forget(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest, (_, last) = next(iter(buckets.items()))
            if now - last < FULL_AFTER_S and len(buckets) <= self.max_clients:
                break
            del buckets[oldest]

    def __len__(self) -> int:
        return len(self._buckets)
