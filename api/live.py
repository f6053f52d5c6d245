"""Live summaries shared by every client: cached, refreshed on NOTIFY and by a poll, fanned out to SSE streams.

One :class:`LiveHub` per app holds one LISTEN connection (the writer's channel and payload, described in
:mod:`stadtpuls.schema`: ``{"parking": n, "bins": n, "passengers": n, "environment": n}``) and a poll every
``live_poll_interval`` seconds (the fallback, and what turns silent sensors into ``unknown``). Each :class:`Topic`
(``lots``, ``lines``, ``vehicles``, and the open-data feeds of :mod:`stadtpuls.api.opendata.topics`) caches its body
(JSON, or what its ``encode`` makes) for ``api_cache_ttl`` seconds, recomputes it once however many requests wait
(single flight), and pushes it to its subscribers only when it changed. After a NOTIFY (the data changed) the next
request waits for the recomputed body; a body that is only older than ``api_cache_ttl`` (or expired by the poll) but
younger than twice that is still served while the hub's refresher recomputes it, so a polled summary never makes
its requests wait for the database. Subscribers are bounded queues holding the
latest body: a slow client skips intermediate states, it never makes the hub wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from stadtpuls.logs import get_logger
from stadtpuls.schema import NOTIFY_CHANNEL, PARKING_EVENTS, PASSENGER_COUNTS, notify_counts

__all__ = ["LiveHub", "Topic"]

MAX_DERIVED = 256
#: the topics to refresh when readings of a kind (a NOTIFY payload key) were stored
TOPICS_BY_KIND = {
    PARKING_EVENTS.notify_key: ("lots", "parking_sites", "parking_spots", "datex2", "datex2_spaces"),
    PASSENGER_COUNTS.notify_key: ("lines", "vehicles", "vehicle_positions"),
}
log = get_logger("stadtpuls.api.live")

Compute = Callable[[AsyncConnectionPool], Awaitable[Any]]
Encode = Callable[[Any], bytes]
#: set while a topic is computed: the topics it reads are then recomputed when out of date, never served stale
_REFRESHING: ContextVar[bool] = ContextVar("live_refreshing", default=False)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NAIVE_UTC)


class Topic:
    """A cached summary; ``encode`` turns its data into the body (JSON by default)."""

    def __init__(self, name: str, compute: Compute, ttl: float, encode: Encode = _dumps) -> None:
        self.name = name
        self.compute = compute
        self.ttl = ttl
        self.encode = encode
        self.body: bytes | None = None
        self.data: Any = None
        self._at = 0.0
        self._gen = 0  # invalidation generation
        self._body_gen = -1
        self._lock = asyncio.Lock()
        self.subscribers: set[asyncio.Queue[bytes]] = set()
        self.wake = asyncio.Event()
        self.refreshes = 0
        self._derived: dict[str, bytes] = {}
        self._derived_of: bytes | None = None

    def fresh(self) -> bool:
        return self.body is not None and self._body_gen == self._gen and time.monotonic() - self._at < self.ttl

    def invalidate(self) -> None:
        """The data changed (a NOTIFY): the next request waits for the recomputed body."""
        self._gen += 1
        self.wake.set()

    def expire(self) -> None:
        """Time passed (the poll: silent sensors turn unknown): recomputed now, the last body served meanwhile."""
        self._at = min(self._at, time.monotonic() - self.ttl)
        self.wake.set()

    async def get(self, pool: AsyncConnectionPool) -> tuple[bytes, Any]:
        """The current body and data, recomputed when stale (one computation for all concurrent callers)."""
        if self.ttl <= 0:  # caching off: every caller computes on its own
            data = await self.compute(pool)
            return self.encode(data), data
        if self.fresh():
            assert self.body is not None
            return self.body, self.data
        if (
            self.body is not None
            and self._body_gen == self._gen
            and time.monotonic() - self._at < 2 * self.ttl
            and not _REFRESHING.get()
        ):
            self.wake.set()  # the hub's refresher recomputes it; until then the last body, at most 2 ttl old
            return self.body, self.data
        return await self.refresh(pool)

    async def refresh(self, pool: AsyncConnectionPool) -> tuple[bytes, Any]:
        async with self._lock:
            if not self.fresh():
                gen = self._gen
                token = _REFRESHING.set(True)  # the topics a computation reads are read fresh, never stale
                try:
                    data = await self.compute(pool)
                finally:
                    _REFRESHING.reset(token)
                body = self.encode(data)
                changed = body != self.body
                if not changed and self.body is not None:  # the same object: its derived renderings stay valid
                    body = self.body
                self.body, self.data, self._at, self._body_gen = body, data, time.monotonic(), gen
                self.refreshes += 1
                if changed:
                    self._broadcast(body)
            assert self.body is not None
            return self.body, self.data

    def derived(self, key: str, make: Callable[[], bytes]) -> bytes:
        """Another rendering of the current data (a filtered page, another encoding) by ``make``, kept under ``key``
        until the data changes (at most :data:`MAX_DERIVED` of them); with caching off, made every time."""
        if self.ttl <= 0:
            return make()
        if self._derived_of is not self.body or len(self._derived) >= MAX_DERIVED:
            self._derived, self._derived_of = {}, self.body
        out = self._derived.get(key)
        if out is None:
            out = self._derived[key] = make()
        return out

    def subscribe(self) -> asyncio.Queue[bytes]:
        q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self.subscribers.discard(q)

    def _broadcast(self, body: bytes) -> None:
        for q in self.subscribers:
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(body)


class LiveHub:
    def __init__(self, pool: AsyncConnectionPool, url: str, *, poll_interval: float, min_gap: float = 0.1) -> None:
        self.pool = pool
        self.url = url
        self.poll_interval = poll_interval
        self.min_gap = min_gap
        self.topics: dict[str, Topic] = {}
        self.notifications = 0
        self.listening = False
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, name: str, compute: Compute, ttl: float, encode: Encode = _dumps) -> Topic:
        topic = Topic(name, compute, ttl, encode)
        self.topics[name] = topic
        return topic

    async def get(self, name: str) -> tuple[bytes, Any]:
        return await self.topics[name].get(self.pool)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._listen(), name="live-listen"))
        self._tasks.append(asyncio.create_task(self._poll(), name="live-poll"))
        for topic in self.topics.values():
            self._tasks.append(asyncio.create_task(self._refresher(topic), name=f"live-{topic.name}"))

    async def stop(self) -> None:
        pending = set(self._tasks)
        while pending:
            # a task whose cancellation was swallowed inside a library call (seen while waiting for a pool
            # connection) would otherwise be waited for forever: cancel again until every task has ended
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        self._tasks.clear()

    def on_notify(self, payload: str) -> None:
        self.notifications += 1
        counts = notify_counts(payload)
        if counts is None:  # unknown payload: refresh everything
            counts = {kind: 1 for kind in TOPICS_BY_KIND}
        for kind, names in TOPICS_BY_KIND.items():
            if counts.get(kind):
                for name in names:
                    if name in self.topics:
                        self.topics[name].invalidate()

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
                    self.listening = True
                    backoff = 0.5
                    log.info("listening", extra={"channel": NOTIFY_CHANNEL})
                    async for note in conn.notifies():
                        self.on_notify(note.payload)
            except psycopg.OperationalError as e:
                log.warning("listen connection lost", extra={"error": str(e).splitlines()[0] if str(e) else ""})
            finally:
                self.listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            for topic in self.topics.values():
                topic.expire()

    async def _refresher(self, topic: Topic) -> None:
        while True:
            await topic.wake.wait()
            topic.wake.clear()
            try:
                await topic.refresh(self.pool)
            except (psycopg.Error, OSError) as e:
                log.warning("live refresh failed", extra={"topic": topic.name, "error": type(e).__name__})
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.min_gap)
