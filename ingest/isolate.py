"""Writing a batch so that one bad message cannot stop the others.

:func:`write_isolating` prepares and writes messages in one transaction. When the database rejects a row
(``DataError``, ``IntegrityError``) or preparing raises on some message (a defect a message triggers), the
messages are split in halves and written again, down to the single message at fault, which becomes a dead letter
(stage ``database`` or ``internal``, with the SQLSTATE and message). Errors that are not about the data mean the
database cannot be used now: :class:`Unavailable`. ``TransactionRollback`` (deadlock, serialization failure)
propagates for the caller to retry.

Exceptions::

    Unavailable     the database cannot be written now (attribute: error, the psycopg exception)
"""

from __future__ import annotations

import time

import psycopg

from stadtpuls.logs import get_logger

from .metrics import Metrics
from .pipeline import DeadLetter, Pipeline, dead_letter_fields
from .writer import PreparedBatch, Writer

__all__ = ["Unavailable", "write_isolating"]

log = get_logger("stadtpuls.ingest.worker")
_BAD_ROW = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


class Unavailable(Exception):
    def __init__(self, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.error = error


def write_isolating(
    pipeline: Pipeline, writer: Writer, metrics: Metrics, topics: list[str], payloads: list[bytes], hub: float
) -> None:
    """Commit the messages (bad ones as dead letters), or raise Unavailable / TransactionRollback."""
    try:
        prepared = pipeline.prepare(topics, payloads, hub)
    except Exception as e:  # isolate the message that triggers it
        _split(pipeline, writer, metrics, topics, payloads, hub, "internal", f"internal error: {type(e).__name__}: {e}")
        return
    try:
        result = writer.write(prepared.batch)
    except _BAD_ROW as e:
        diag = e.diag.message_primary or str(e)
        _split(pipeline, writer, metrics, topics, payloads, hub, "database", f"{e.sqlstate or ''} {diag}".strip())
        return
    except psycopg.errors.TransactionRollback:
        raise
    except psycopg.Error as e:
        raise Unavailable(e) from e
    metrics.count_batch(result, prepared.dead, prepared.envelopes)


def _split(
    pipeline: Pipeline,
    writer: Writer,
    metrics: Metrics,
    topics: list[str],
    payloads: list[bytes],
    hub: float,
    stage: str,
    reason: str,
) -> None:
    if len(topics) == 1:
        log.warning("message dead-lettered", extra={"stage": stage, "reason": reason[:200], "topic": topics[0]})
        _dead_only(writer, metrics, topics, payloads, hub, stage, reason)
        return
    half = len(topics) // 2
    write_isolating(pipeline, writer, metrics, topics[:half], payloads[:half], hub)
    # Uplinks timed by the hub are read at hub + k µs, k < half in the first half (ingest.envelopes.hub_clock):
    # the second half is received after them (2 µs spare for float rounding), so no device's readings collide.
    later = hub + (half + 2) / 1e6
    write_isolating(pipeline, writer, metrics, topics[half:], payloads[half:], later)


def _dead_only(
    writer: Writer, metrics: Metrics, topics: list[str], payloads: list[bytes], hub: float, stage: str, reason: str
) -> None:
    dead = [DeadLetter(0, stage, reason[:1000])]
    batch = PreparedBatch(
        uplinks=[], n_uplinks=0, dead_letters=dead_letter_fields(dead, topics, payloads, hub), n_dead=1
    )
    try:
        writer.write(batch)
    except _BAD_ROW as e:
        log.error("dead letter not storable; message dropped", extra={"topic": topics[0], "error": str(e)})
    except psycopg.errors.TransactionRollback:
        raise
    except psycopg.Error as e:
        raise Unavailable(e) from e
    metrics.dead_letter(stage, reason)
    metrics.last_commit = time.time()
