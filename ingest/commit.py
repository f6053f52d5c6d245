"""One path from a batch of received messages to the database: prepare, write, split on bad rows, count.

A :class:`MessageBatch` is what the worker takes from the inbox or replays from the spool: the messages to
acknowledge, their topics and payloads, the hub's receive time and, once prepared, what the pipeline made of it.
:meth:`Committer.commit` serves every batch, whether its write ran in a writer thread or runs now:

1. prepare (:meth:`ingest.pipeline.Pipeline.prepare`: parse, resolve devices, decode, map), once per batch;
2. write it in one transaction (:meth:`ingest.writer.Writer.write`);
3. when the database rejects a row (``DataError``, ``IntegrityError``) or preparing raised on some message (a
   defect a message triggers), split the messages in halves and commit each the same way, down to the single
   message at fault, which becomes a dead letter (stage ``database`` or ``internal``, with the SQLSTATE and
   message) while everything else is stored;
4. count the metrics of every committed part, and the batch's time and size once.

Errors that are not about the data mean the database cannot be used now: :class:`Unavailable`.
``TransactionRollback`` (deadlock, serialization failure) propagates for the caller to retry.

Exceptions::

    Unavailable     the database cannot be written now (attribute: error, the psycopg exception)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import psycopg

from stadtpuls.logs import get_logger

from .inbox import Message
from .metrics import Metrics
from .pipeline import DeadLetter, Pipeline, Prepared, dead_letter_fields
from .writer import PreparedBatch, Writer, WriteResult

__all__ = ["Committer", "MessageBatch", "Unavailable"]

log = get_logger("stadtpuls.ingest.worker")
_BAD_ROW = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


class Unavailable(Exception):
    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class MessageBatch:
    """Messages on their way to the database, in order. ``messages`` are what is acknowledged once the batch is
    committed or spooled (none for a batch replayed from the spool); ``hub_time`` is the hub's receive time
    (POSIX seconds); ``sources`` the position of each message's source (``Message.source``; -1 not known, e.g.
    a tool's batch), for the check of the applications a source may deliver."""

    topics: list[str]
    payloads: list[bytes]
    hub_time: float
    messages: list[Message] = field(default_factory=list)
    sources: list[int] = field(default_factory=list)
    #: what the pipeline made of the batch; None until prepared, or when preparing raised (see ``failure``)
    prepared: Prepared | None = None
    failure: str | None = None
    #: ``time.perf_counter()`` when preparing began
    started: float = 0.0

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.topics):
            self.sources = [m.source for m in self.messages] if self.messages else [-1] * len(self.topics)

    @classmethod
    def received(cls, messages: Sequence[Message], hub_time: float | None = None) -> MessageBatch:
        """The batch of ``messages`` received now (or at ``hub_time``)."""
        return cls(
            [m.topic for m in messages],
            [m.payload for m in messages],
            time.time() if hub_time is None else hub_time,
            list(messages),
        )

    def __len__(self) -> int:
        return len(self.topics)

    def followed_by(self, later: MessageBatch) -> MessageBatch:
        """This batch and ``later`` as one, unprepared, at this batch's receive time."""
        return MessageBatch(
            self.topics + later.topics,
            self.payloads + later.payloads,
            self.hub_time,
            self.messages + later.messages,
            self.sources + later.sources,
        )

    def halves(self) -> tuple[MessageBatch, MessageBatch]:
        """The first and the second half of the messages, unprepared. The second half counts as received
        ``h + 2`` µs later (``h`` the first half's length, 2 µs spare for float rounding): an uplink timed by the
        hub is read at most ``h`` µs after the hub time of its half, so no device's readings collide."""
        h = len(self) // 2
        later = self.hub_time + (h + 2) / 1e6
        first = MessageBatch(self.topics[:h], self.payloads[:h], self.hub_time, self.messages[:h], self.sources[:h])
        second = MessageBatch(self.topics[h:], self.payloads[h:], later, self.messages[h:], self.sources[h:])
        return first, second


class Committer:
    """Commits batches through ``pipeline`` and a writer, counting into ``metrics`` (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, metrics: Metrics) -> None:
        self.pipeline = pipeline
        self.metrics = metrics

    def prepare(self, batch: MessageBatch) -> None:
        """Prepare ``batch`` for its write; an error while preparing is kept in ``batch.failure`` for commit."""
        batch.started = time.perf_counter()
        batch.failure = None
        try:
            batch.prepared = self.pipeline.prepare(batch.topics, batch.payloads, batch.hub_time, batch.sources)
        except Exception as e:  # a defect that some message triggers: commit finds that message by splitting
            batch.prepared = None
            batch.failure = f"internal error: {type(e).__name__}: {e}"

    def commit(self, batch: MessageBatch, writer: Writer, written: Future[WriteResult] | None = None) -> None:
        """Commit ``batch`` (bad messages as dead letters), or raise :class:`Unavailable` or TransactionRollback.

        ``written``: the write of the prepared batch, already running in a writer thread; ``writer`` must be free
        (the one that ran it, when it has finished)."""
        self._commit(batch, writer, written)
        self.metrics.batch_seconds.observe(time.perf_counter() - batch.started)
        self.metrics.batch_size.observe(len(batch))

    def _commit(self, batch: MessageBatch, writer: Writer, written: Future[WriteResult] | None = None) -> None:
        if batch.prepared is None and batch.failure is None:
            self.prepare(batch)
        if batch.prepared is None:
            self._split(batch, writer, "internal", batch.failure or "internal error")
            return
        try:
            result = written.result() if written is not None else writer.write(batch.prepared.batch)
        except _BAD_ROW as e:
            diag = e.diag.message_primary or str(e)
            self._split(batch, writer, "database", f"{e.sqlstate or ''} {diag}".strip())
            return
        except psycopg.errors.TransactionRollback:
            raise
        except psycopg.Error as e:
            raise Unavailable(e) from e
        self.metrics.count_batch(result, batch.prepared.dead, batch.prepared.envelopes)

    def _split(self, batch: MessageBatch, writer: Writer, stage: str, reason: str) -> None:
        if len(batch) == 1:
            extra = {"stage": stage, "reason": reason[:200], "topic": batch.topics[0]}
            log.warning("message dead-lettered", extra=extra)
            self._dead_letter(batch, writer, stage, reason)
            return
        for half in batch.halves():
            self._commit(half, writer)

    def _dead_letter(self, batch: MessageBatch, writer: Writer, stage: str, reason: str) -> None:
        """Store the single message of ``batch`` as a dead letter only."""
        dead = [DeadLetter(0, stage, reason[:1000])]
        fields = dead_letter_fields(dead, batch.topics, batch.payloads, batch.hub_time)
        try:
            writer.write(PreparedBatch(uplinks=[], n_uplinks=0, dead_letters=fields, n_dead=1))
        except _BAD_ROW as e:
            log.error("dead letter not storable; message dropped", extra={"topic": batch.topics[0], "error": str(e)})
        except psycopg.errors.TransactionRollback:
            raise
        except psycopg.Error as e:
            raise Unavailable(e) from e
        self.metrics.dead_letter(stage, reason)
        self.metrics.last_commit = time.time()
