"""The bounded hand-over between the MQTT network thread and the batch worker.

The network thread puts whole read chunks of messages (:meth:`Inbox.put_many`); when the inbox holds ``maxlen``
messages it waits for room, so it stops reading from the socket (back-pressure) instead of dropping. The worker
takes a batch (:meth:`Inbox.take`) once ``batch_size`` messages are there or ``flush_interval`` seconds after the
oldest waiting message arrived.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import NamedTuple

__all__ = ["Inbox", "Message"]


class Message(NamedTuple):
    """One received message; ``generation`` counts connections (acks only go to the current one), ``source`` is
    the position of the source that delivered it (acks go back to it)."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    source: int = 0


class Inbox:
    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self._items: deque[Message] = deque()
        self._cond = threading.Condition()
        self._first_at = 0.0
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        """Wake every waiter; a blocked producer gives up waiting for room."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def put_many(self, items: list[Message]) -> bool:
        """Add messages, waiting while the inbox is full; False if it was closed while waiting (items dropped:
        they are unacknowledged, so the broker delivers them again)."""
        with self._cond:
            while len(self._items) >= self.maxlen and not self._closed:
                self._cond.wait(0.5)
            if self._closed:
                return False
            if not self._items:
                self._first_at = time.monotonic()
            self._items.extend(items)
            self._cond.notify_all()
            return True

    def take(self, batch_size: int, flush_interval: float, idle_timeout: float) -> list[Message]:
        """Up to ``batch_size`` messages: waits up to ``idle_timeout`` for a first one, then until the batch is
        full or the oldest has waited ``flush_interval``. Returns [] on idle timeout."""
        items = self._items
        with self._cond:
            if not items:
                self._cond.wait(idle_timeout)
                if not items:
                    return []
            while len(items) < batch_size and not self._closed:
                remaining = self._first_at + flush_interval - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            n = min(batch_size, len(items))
            if n == len(items):
                out = list(items)
                items.clear()
            else:
                out = [items.popleft() for _ in range(n)]
                self._first_at = time.monotonic()
            self._cond.notify_all()
            return out
