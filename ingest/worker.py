"""The batch worker: takes batches from the inbox, commits them, and acknowledges what is safe.

For each batch (cut by size or time, :class:`~ingest.inbox.Inbox`) the worker decides where it goes; the way to the
database is :class:`~ingest.commit.Committer` (prepare, write, split on bad rows, count). A batch is prepared here
while earlier ones are written by writer threads, each with its own connection (``WorkerConfig.writers``, 2);
results are taken, and messages acknowledged, in batch order. Failures by class:

* ``DataError`` / ``IntegrityError`` (a row the database rejects), or an unexpected error while preparing: the
  committer splits the batch until the offending message is alone; it becomes a dead letter (stage ``database``
  or ``internal``) and everything else is stored.
* ``TransactionRollback`` (deadlock, serialization): retried.
* Any other database error (connection lost, server down): the batch goes to the spool (fsynced) and is
  acknowledged; later batches follow it into the spool so the order is kept, and the spool is replayed, record
  by record, when the database answers again. When the spool is full the batch is held unacknowledged and the
  worker stops taking messages, so the inbox fills and the MQTT thread stops reading (back-pressure). A held
  batch is prepared again when it is retried (the registry may have changed in between).
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

from .authentic import SourceApplications
from .commit import Committer, MessageBatch, Unavailable
from .db_problem import DatabaseProblem, explain
from .inbox import Inbox, Message
from .metrics import Metrics
from .pipeline import Pipeline
from .registry import load_registry
from .spool import Spool
from .stops import load_recent_stops
from .writer import Writer, WriteResult

__all__ = ["Acker", "Worker", "WorkerConfig"]

log = get_logger("stadtpuls.ingest.worker")
_RETRY_MIN, _RETRY_MAX = 0.5, 5.0
_ROLLBACK_ATTEMPTS = 3


@dataclass
class _Inflight:
    batch: MessageBatch
    writer: Writer
    future: Future[WriteResult]


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
    max_clock_skew: float = 300.0
    applications: SourceApplications = ()  # by source position: see ingest.authentic.application_refusals


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
        self.committer: Committer | None = None
        self.db_down = False
        self._retry_at = 0.0
        self._retry_delay = _RETRY_MIN
        self._registry_due = 0.0
        self._held: MessageBatch | None = None
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
            return load_recent_stops(self._side_conn(), vehicles)
        except psycopg.Error:
            return {}

    def refresh_registry(self, force: bool = False) -> bool:
        """Reload the device registry when due; False if the database could not be read."""
        now = time.monotonic()
        if self.pipeline is not None and not force and now < self._registry_due:
            return True
        self._registry_due = now + self.config.registry_refresh  # after a failure too: retry at the next interval
        try:
            registry = load_registry(self._side_conn())
        except psycopg.Error as e:
            self._note_problem(e, "device registry not refreshed")
            return False
        if self.pipeline is None:
            self.pipeline = Pipeline(
                registry,
                max_message_bytes=self.config.max_message_bytes,
                store_simulated=self.config.store_simulated,
                max_clock_skew=self.config.max_clock_skew,
                recent_stops=self._recent_stops,
                applications=self.config.applications,
            )
            self.committer = Committer(self.pipeline, self.metrics)
            log.info("device registry loaded", extra={"devices": len(registry)})
        else:
            self.pipeline.registry = registry
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

    def handle(self, messages: list[Message]) -> None:
        """Prepare a batch while earlier ones are written by the writer threads, then hand it over."""
        batch = MessageBatch.received(messages)
        self.metrics.received.inc(len(batch))
        if self._must_queue() or self.committer is None:
            self.finish_inflight()
            self._spool_or_hold(batch)
            return
        self.committer.prepare(batch)
        while len(self._inflight) >= len(self._writers):
            self._finish(self._inflight.popleft())
        if self._must_queue():
            self.finish_inflight()
            self._spool_or_hold(batch)
        elif batch.prepared is None:  # preparing raised: the committer finds the message at fault, synchronously
            self.finish_inflight()
            self._written(batch, self._commit(batch, self.writer))
        else:
            busy = {id(i.writer) for i in self._inflight}
            writer = next(w for w in self._writers if id(w) not in busy)
            future = self._executor.submit(writer.write, batch.prepared.batch)
            self._inflight.append(_Inflight(batch, writer, future))

    def _must_queue(self) -> bool:
        """True while batches must wait behind others (spooled or held) or the database is away."""
        return self.db_down or self._held is not None or self.spool.pending

    def finish_inflight(self) -> None:
        """Wait for every batch in the writer threads, oldest first."""
        while self._inflight:
            self._finish(self._inflight.popleft())

    def _finish(self, inflight: _Inflight) -> None:
        """Acknowledge a written batch, or isolate its bad rows, or spool it."""
        self._written(inflight.batch, self._commit(inflight.batch, inflight.writer, inflight.future))

    def _written(self, batch: MessageBatch, ok: bool) -> None:
        if ok:
            self.metrics.lag.set(time.time() - batch.hub_time)
            self.acker.ack(batch.messages)
        else:
            self._spool_or_hold(batch)

    def close(self) -> None:
        self.finish_inflight()
        self._executor.shutdown(wait=True)
        for extra in self._writers[1:]:
            extra.close()
        if self._side is not None:
            self._side.close()

    def _spool_or_hold(self, batch: MessageBatch) -> None:
        batch.prepared, batch.failure = None, None  # prepared again when retried or replayed
        if self._held is None and self.spool.append(batch.hub_time, batch.topics, batch.payloads, batch.sources):
            self.metrics.spooled.inc(len(batch))
            self._spool_gauges()
            self.acker.ack(batch.messages)
            self._spool_full_logged = False
            return
        if not self._spool_full_logged:
            log.warning("spool full: holding messages unacknowledged", extra={"spool_bytes": self.spool.size})
            self._spool_full_logged = True
        # Already holding a batch (several were in flight when the spool filled up): keep both, in order.
        # Replacing it would leave the first one unacknowledged and unwritten until the next reconnection.
        self._held = batch if self._held is None else self._held.followed_by(batch)

    def _retry_held(self) -> None:
        assert self._held is not None
        if self.spool.pending:
            if not self.replay_one():
                time.sleep(0.05)
            return
        held = self._held
        if self._commit(held, self.writer):
            self._held = None
            self.acker.ack(held.messages)

    def replay_one(self) -> bool:
        """Write the oldest spool record; True if it was committed."""
        self.finish_inflight()
        record = self.spool.next_record()
        if record is None:
            return False
        hub_time, topics, payloads, _, sources = record
        if not self._commit(MessageBatch(topics, payloads, hub_time, sources=sources), self.writer):
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

    # -- committing ----------------------------------------------------------------------------------------------
    def _commit(self, batch: MessageBatch, writer: Writer, written: Future[WriteResult] | None = None) -> bool:
        """Commit ``batch`` (see :meth:`Committer.commit`), retrying serialization failures; True when committed,
        False when the database is unavailable."""
        assert self.committer is not None
        for attempt in range(1, _ROLLBACK_ATTEMPTS + 1):
            try:
                self.committer.commit(batch, writer, written)
                break
            except psycopg.errors.TransactionRollback:
                written = None  # again, by this thread
                if attempt == _ROLLBACK_ATTEMPTS:
                    self._failed()
                    return False
            except Unavailable as e:
                self.metrics.db_errors.labels(type(e.error).__name__).inc()
                self._note_problem(e.error, "batch not written")
                self._failed()
                return False
        self._recovered()
        return True
