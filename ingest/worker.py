"""The batch worker: takes batches from the inbox, writes them, and acknowledges what is safe.

For each batch (cut by size or time, :class:`~ingest.inbox.Inbox`): prepare (:mod:`ingest.pipeline`), write in
one transaction (:mod:`ingest.writer`), then acknowledge the messages. The writes run in writer threads, each
with its own connection (``WorkerConfig.writers``, 2), so the next batch is prepared while earlier ones commit;
results are taken, and messages acknowledged, in batch order. Failures by class:

* ``DataError`` / ``IntegrityError`` (a row the database rejects), or an unexpected error while preparing: the
  batch is split in halves until the offending message is alone; it becomes a dead letter (stage ``database``
  or ``internal``) and everything else is stored.
* ``TransactionRollback`` (deadlock, serialization): retried.
* Any other database error (connection lost, server down): the batch goes to the spool (fsynced) and is
  acknowledged; later batches follow it into the spool so the order is kept, and the spool is replayed, record
  by record, when the database answers again. When the spool is full the batch is held unacknowledged and the
  worker stops taking messages, so the inbox fills and the MQTT thread stops reading (back-pressure).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import psycopg

from stadtpuls.logs import get_logger

from .db_problem import DatabaseProblem, explain
from .inbox import Inbox, Message
from .isolate import Unavailable, write_isolating
from .metrics import Metrics
from .pipeline import Pipeline, Prepared
from .registry import load_registry
from .spool import Spool
from .writer import Writer, WriteResult

__all__ = ["Acker", "Worker", "WorkerConfig"]

log = get_logger("stadtpuls.ingest.worker")
_RETRY_MIN, _RETRY_MAX = 0.5, 5.0
_RECENT_STOPS = """
SELECT DISTINCT ON (site_id) site_id, stop_id, (extract(epoch FROM time) * 1000000)::bigint
FROM passenger_counts
WHERE site_id = ANY(%s) AND stop_id IS NOT NULL AND time > now() - interval '10 minutes'
ORDER BY site_id, time DESC
"""


@dataclass
class _Inflight:
    future: Future[WriteResult]
    writer: Writer
    items: list[Message]
    topics: list[str]
    payloads: list[bytes]
    hub: float
    prepared: Prepared
    start: float


class Acker(Protocol):
    """What the worker needs from the MQTT side (``ingest.mqtt.MqttSource`` implements it)."""

    def ack(self, messages: Sequence[Message]) -> int: ...


@dataclass
class WorkerConfig:
    batch_size: int = 5000
    flush_interval: float = 0.2
    registry_refresh: float = 10.0
    writers: int = 2
    max_message_bytes: int = 65536
    store_simulated: bool = False


class Worker:
    def __init__(
        self, config: WorkerConfig, inbox: Inbox, acker: Acker, writer: Writer, spool: Spool, metrics: Metrics
    ) -> None:
        self.config = config
        self.inbox = inbox
        self.acker = acker
        self.writer = writer
        self.spool = spool
        self.metrics = metrics
        self.pipeline: Pipeline | None = None
        self.db_down = False
        self._retry_at = 0.0
        self._retry_delay = _RETRY_MIN
        self._held: tuple[list[Message], list[str], list[bytes], float] | None = None
        self._spool_full_logged = False
        self._problem: DatabaseProblem | None = None  # the last one logged, so a repeated one is not
        self._side: psycopg.Connection[Any] | None = None
        # batches are committed by up to ``writers`` connections at once, each in its own thread
        self._writers = [writer] + [Writer(writer.url) for _ in range(config.writers - 1)]
        self._executor = ThreadPoolExecutor(max_workers=config.writers, thread_name_prefix="ingest-writer")
        self._inflight: deque[_Inflight] = deque()
        metrics.spool_messages.set(spool.messages)
        metrics.spool_bytes.set(spool.pending_bytes)

    # -- registry ---------------------------------------------------------------------------------------------
    def _side_conn(self) -> psycopg.Connection[Any]:
        """An autocommit connection for reads beside the writer's (registry, recent stops)."""
        if self._side is None or self._side.closed or self._side.broken:
            self._side = psycopg.connect(self.writer.url, autocommit=True, connect_timeout=5)
        return self._side

    def _recent_stops(self, vehicles: list[str]) -> dict[str, tuple[str, np.datetime64]]:
        try:
            rows = self._side_conn().execute(_RECENT_STOPS, (vehicles,)).fetchall()
        except psycopg.Error:
            return {}
        return {v: (s, np.datetime64(int(us), "us")) for v, s, us in rows}

    def refresh_registry(self, force: bool = False) -> bool:
        """Reload the device registry when due; False if the database could not be read."""
        p = self.pipeline
        if p is not None and not force and not p.registry.stale(self.config.registry_refresh):
            return True
        try:
            registry = load_registry(self._side_conn())
        except psycopg.Error as e:
            if p is not None:
                p.registry.loaded_at = time.monotonic()  # retry at the next interval
            self._note_problem(e, "device registry not refreshed")
            return False
        if p is None:
            self.pipeline = Pipeline(
                registry,
                max_message_bytes=self.config.max_message_bytes,
                store_simulated=self.config.store_simulated,
                recent_stops=self._recent_stops,
            )
            log.info("device registry loaded", extra={"devices": len(registry)})
        else:
            p.registry = registry
        return True

    # -- main loop --------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set and the inbox is empty (the caller stops the MQTT reading first)."""
        try:
            self._run(stop)
        finally:
            self.close()

    def _run(self, stop: threading.Event) -> None:
        while True:
            stopping = stop.is_set()
            self.metrics.queue_depth.set(len(self.inbox))
            if self.pipeline is None or self.db_down:
                if self._due():
                    if self.refresh_registry(force=True):
                        self._recovered()
                    else:
                        self._failed()
            else:
                self.refresh_registry()
            if self._held is not None:
                if stopping:
                    return  # neither stored nor spooled: unacknowledged, the broker keeps them
                if self.db_down:
                    time.sleep(0.05)
                else:
                    self._retry_held()
                continue
            wait = 0.0 if stopping or self._inflight else 0.25
            items = self.inbox.take(self.config.batch_size, self.config.flush_interval, wait)
            if items:
                self.handle(items)
            else:
                self.finish_inflight()
                if stopping:
                    return
            if self.spool.pending and not self.db_down and self.pipeline is not None:
                for _ in range(2):
                    if not self.replay_one():
                        break

    def handle(self, items: list[Message]) -> None:
        """Prepare a batch while earlier ones are written by the writer threads, then hand it over."""
        topics = [m.topic for m in items]
        payloads = [m.payload for m in items]
        hub = time.time()
        self.metrics.received.inc(len(items))
        if self.spool.pending or self.db_down or self.pipeline is None:
            self.finish_inflight()
            self._spool_or_hold(items, topics, payloads, hub)
            return
        start = time.perf_counter()
        try:
            prepared: Prepared | None = self.pipeline.prepare(topics, payloads, hub)
        except Exception:  # isolated message by message in write()
            prepared = None
        while len(self._inflight) >= len(self._writers):
            self._finish(self._inflight.popleft())
        if self.db_down or self._held is not None or self.spool.pending or prepared is None:
            self.finish_inflight()
        if self.db_down or self._held is not None or self.spool.pending:
            self._spool_or_hold(items, topics, payloads, hub)
        elif prepared is None:
            self._written(items, topics, payloads, hub, self.write(topics, payloads, hub))
        else:
            busy = {id(i.writer) for i in self._inflight}
            writer = next(w for w in self._writers if id(w) not in busy)
            future = self._executor.submit(writer.write, prepared.batch)
            self._inflight.append(_Inflight(future, writer, items, topics, payloads, hub, prepared, start))

    def finish_inflight(self) -> None:
        """Wait for every batch in the writer threads, oldest first."""
        while self._inflight:
            self._finish(self._inflight.popleft())

    def _finish(self, inflight: _Inflight) -> None:
        """Acknowledge a written batch, or isolate its bad rows, or spool it."""
        items, topics, payloads, hub = inflight.items, inflight.topics, inflight.payloads, inflight.hub
        try:
            result = inflight.future.result()
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError, psycopg.errors.TransactionRollback):
            self.finish_inflight()  # the synchronous path below uses the first writer's connection
            ok = self.write(topics, payloads, hub)  # again, synchronously, splitting out what the database rejects
        except psycopg.Error as e:
            self.metrics.db_errors.labels(type(e).__name__).inc()
            self._note_problem(e, "batch not written")
            self._failed()
            ok = False
        else:
            self.metrics.count_batch(result, inflight.prepared.dead, inflight.prepared.envelopes)
            self._recovered()
            self.metrics.batch_seconds.observe(time.perf_counter() - inflight.start)
            self.metrics.batch_size.observe(len(items))
            ok = True
        self._written(items, topics, payloads, hub, ok)

    def _written(self, items: list[Message], topics: list[str], payloads: list[bytes], hub: float, ok: bool) -> None:
        if ok:
            self.metrics.lag.set(time.time() - hub)
            self.acker.ack(items)
        else:
            self._spool_or_hold(items, topics, payloads, hub)

    def close(self) -> None:
        self.finish_inflight()
        self._executor.shutdown(wait=True)
        for extra in self._writers[1:]:
            extra.close()
        if self._side is not None:
            self._side.close()

    def _spool_or_hold(self, items: list[Message], topics: list[str], payloads: list[bytes], hub: float) -> None:
        if self._held is None and self.spool.append(hub, topics, payloads):
            self.metrics.spooled.inc(len(items))
            self._spool_gauges()
            self.acker.ack(items)
            self._spool_full_logged = False
            return
        if not self._spool_full_logged:
            log.warning("spool full: holding messages unacknowledged", extra={"spool_bytes": self.spool.size})
            self._spool_full_logged = True
        if self._held is not None:
            # Already holding a batch (several were in flight when the spool filled up): keep both, in order.
            # Replacing it would leave the first one unacknowledged and unwritten until the next reconnection.
            held_items, held_topics, held_payloads, held_hub = self._held
            self._held = (held_items + items, held_topics + topics, held_payloads + payloads, held_hub)
        else:
            self._held = (items, topics, payloads, hub)

    def _retry_held(self) -> None:
        assert self._held is not None
        if self.spool.pending:
            if not self.replay_one():
                time.sleep(0.05)
            return
        items, topics, payloads, hub = self._held
        if self.write(topics, payloads, hub):
            self._held = None
            self.acker.ack(items)

    def replay_one(self) -> bool:
        """Write the oldest spool record; True if it was committed."""
        self.finish_inflight()
        record = self.spool.next_record()
        if record is None:
            return False
        hub, topics, payloads, _ = record
        if not self.write(topics, payloads, hub):
            return False
        self.spool.commit(record)
        self.metrics.replayed.inc(len(topics))
        self._spool_gauges()
        if not self.spool.pending:
            log.info("spool replayed and emptied")
        return True

    def _spool_gauges(self) -> None:
        self.metrics.spool_messages.set(self.spool.messages)
        self.metrics.spool_bytes.set(self.spool.pending_bytes)

    def _due(self) -> bool:
        return time.monotonic() >= self._retry_at

    def _note_problem(self, error: psycopg.Error, what: str) -> None:
        """Log what went wrong with the database, with the driver's message, unless it is the one logged last."""
        problem = explain(error, self.writer.url)
        if problem != self._problem:
            log.warning(f"{what}: {problem.event}", extra=problem.fields())
            self._problem = problem

    def _failed(self) -> None:
        if not self.db_down:
            problem = self._problem
            event = problem.event if problem else "database unreachable"
            fields = problem.fields() if problem else {}
            log.error(f"{event}: spooling", extra={"retry_s": self._retry_delay, **fields})
        self.db_down = True
        self.metrics.database_up.set(0)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)

    def _recovered(self) -> None:
        if self.db_down:
            log.info("database reachable again")
        self._problem = None
        self.db_down = False
        self._retry_delay = _RETRY_MIN
        self.metrics.database_up.set(1)

    # -- writing with isolation of bad rows --------------------------------------------------------------------
    def write(self, topics: list[str], payloads: list[bytes], hub: float) -> bool:
        """Prepare and write messages; True when committed (bad messages dead-lettered), False when the database
        is unavailable."""
        start = time.perf_counter()
        for attempt in range(3):
            try:
                ok = self._write_split(topics, payloads, hub)
                break
            except psycopg.errors.TransactionRollback:
                if attempt == 2:
                    self._failed()
                    return False
        else:  # pragma: no cover - the loop always breaks or returns
            ok = False
        if ok:
            self._recovered()
            self.metrics.batch_seconds.observe(time.perf_counter() - start)
            self.metrics.batch_size.observe(len(topics))
        return ok

    def _write_split(self, topics: list[str], payloads: list[bytes], hub: float) -> bool:
        assert self.pipeline is not None
        try:
            write_isolating(self.pipeline, self.writer, self.metrics, topics, payloads, hub)
        except Unavailable as e:
            self.metrics.db_errors.labels(type(e.error).__name__).inc()
            self._note_problem(e.error, "batch not written")
            self._failed()
            return False
        return True
