"""Answers kept per key (a request URL) for ``ttl`` seconds, for routes whose answer is not one of the live hub's
topics (SensorThings, NGSI-LD).

One computation per key however many requests ask at once (single flight). When an answer is older than ``ttl``
but younger than twice that, it is still served while one background computation replaces it, so a polled route
never makes its clients wait for the database once it has answered; an answer older than that is waited for.
Errors are never kept: the callers waiting for a failed computation get its exception. At most ``size`` answers
are kept, the least recently computed dropped first. With ``ttl`` 0 every request computes its own answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["AnswerCache"]

T = TypeVar("T")


class AnswerCache(Generic[T]):
    def __init__(self, ttl: float, size: int = 512) -> None:
        self.ttl = ttl
        self.size = size
        self.computed = 0
        self._kept: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._running: dict[str, asyncio.Task[T]] = {}

    async def get(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        if self.ttl <= 0:
            self.computed += 1
            return await compute()
        kept = self._kept.get(key)
        age = time.monotonic() - kept[0] if kept is not None else None
        if kept is not None and age is not None and age < self.ttl:
            return kept[1]
        task = self._running.get(key)
        if task is None:
            task = self._running[key] = asyncio.ensure_future(self._compute(key, compute))
            task.add_done_callback(_retrieve)
        if kept is not None and age is not None and age < 2 * self.ttl:
            return kept[1]
        return await asyncio.shield(task)  # a caller that goes away leaves the computation to the others

    async def _compute(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await compute()
            self.computed += 1
            self._kept[key] = (time.monotonic(), value)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
            return value
        finally:
            self._running.pop(key, None)


def _retrieve(task: asyncio.Task[T]) -> None:
    """Mark a background computation's error as seen (the callers that waited for it got it already)."""
    if not task.cancelled():
        task.exception()
