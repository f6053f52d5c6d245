"""Backfill from the TTS Storage Integration: fetch the uplinks MQTT missed, through the same write path.

The Things Stack's MQTT server keeps nothing for a disconnected client, so every restart or hiccup loses uplinks
unless they are fetched again from the storage. A run of :class:`Backfill`:

1. reads the application's cursor (``source_cursors``: the ``received_at`` of the last stored uplink the storage
   gave) and starts ``margin`` before it; a new source starts ``retention`` ago. A start older than the storage
   keeps (``retention``) is recorded in ``backfill_gaps`` and moved up: such a gap is not retried forever;
2. asks the storage for a page (``limit`` uplinks after the start, oldest first), streamed: every ``chunk``
   uplinks go to the :class:`Feed` (the ingest's inbox, or a direct commit for ``stadtpuls backfill``) as the TTS
   messages they are, so parse, decode, dedup and write are those of MQTT and an uplink seen on both is stored
   once; once a chunk is committed the cursor moves to its newest ``received_at``;
3. continues after the page's last uplink until a page comes back short (or ``until`` is reached).

Failures: a 429 waits for its ``Retry-After``; a cut answer, a timeout or a 5xx resumes from the cursor after a
growing pause; after ``attempts`` such tries the run ends with state ``failed`` (the next run starts at the
cursor). A refused request (401/403/404) ends the run with state ``refused`` at once; the MQTT path goes on.
:class:`BackfillScheduler` runs a source's backfill at start, after every reconnect and every ``interval``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg

from stadtpuls.logs import get_logger

from .inbox import Inbox, Message
from .sources import TtsSource
from .storage import StorageClient, StorageCut, StorageError, StorageRateLimited, StorageRefused, StoredUplink

__all__ = ["Backfill", "BackfillReport", "BackfillScheduler", "Feed", "InboxFeed"]

log = get_logger("stadtpuls.ingest.backfill")
_CHUNK = 500  # uplinks handed to the feed at a time (the cursor moves after each)
_PAUSE_MIN, _PAUSE_MAX = 1.0, 60.0
_RETRY_AFTER_MAX = 600.0


class Feed(Protocol):
    """Where fetched uplinks go: ``put`` returns once they are committed (or spooled); False if they were not."""

    def put(self, topics: list[str], payloads: list[bytes]) -> bool: ...


class InboxFeed:
    """Puts uplinks into the ingest's inbox as messages of source ``source``, and waits for their acks."""

    def __init__(self, inbox: Inbox, source: int, stop: threading.Event) -> None:
        self.inbox = inbox
        self.source = source
        self.stop = stop
        self._cond = threading.Condition()
        self._next = 1
        self._acked = 0

    def put(self, topics: list[str], payloads: list[bytes]) -> bool:
        first, n, source = self._next, len(topics), self.source
        self._next += n
        messages = [
            Message(t, p, first + i, 0, 0, source) for i, (t, p) in enumerate(zip(topics, payloads, strict=True))
        ]
        if not self.inbox.put_many(messages):
            return False
        with self._cond:
            while self._acked < first + n - 1:
                if self.stop.is_set():
                    return False
                self._cond.wait(0.25)
        return True

    def ack(self, messages: Sequence[Message]) -> int:
        """Called by the worker once the messages are committed or spooled (in order)."""
        top = max((m.mid for m in messages), default=0)
        with self._cond:
            self._acked = max(self._acked, top)
            self._cond.notify_all()
        return len(messages)


@dataclass
class BackfillReport:
    fetched: int = 0
    requests: int = 0
    retries: int = 0
    cursor: datetime | None = None
    gap: tuple[datetime, datetime] | None = None  # recorded as lost: older than the storage keeps
    state: str = "idle"  # caught_up | failed | refused | stopped
    error: str = ""


@dataclass
class _Run:
    report: BackfillReport
    after: datetime | str
    chunk_topics: list[str] = field(default_factory=list)
    chunk_payloads: list[bytes] = field(default_factory=list)
    chunk_newest: str = ""


class Backfill:
    """Backfill runs of one TTS source (see the module docstring)."""

    def __init__(
        self,
        source: TtsSource,
        database_url: str,
        feed: Feed,
        *,
        stop: threading.Event | None = None,
        on_progress: Callable[[BackfillReport], None] | None = None,
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        self.source = source
        self.config = source.backfill
        self.database_url = database_url
        self.feed = feed
        self.stop = stop or threading.Event()
        self.on_progress = on_progress
        self._sleep = sleep or self.stop.wait  # returns True when stopped
        self.client = StorageClient(source.cluster, source.application_id, source.api_key, timeout=self.config.timeout)
        self.last = BackfillReport()
        self.last_run = 0.0  # time.time() of the last run's end
        self.running = False

    def close(self) -> None:
        self.client.close()

    # -- cursor ---------------------------------------------------------------------------------------------------
    def _conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)

    def cursor(self) -> datetime | None:
        with self._conn() as conn:
            row = conn.execute("SELECT cursor FROM source_cursors WHERE source = %s", (self.source.name,)).fetchone()
        return None if row is None else row[0]

    def _save_cursor(self, when: datetime) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO source_cursors (source, application_id, cursor) VALUES (%s, %s, %s)"
                " ON CONFLICT (source) DO UPDATE SET cursor = greatest(source_cursors.cursor, excluded.cursor),"
                " application_id = excluded.application_id, updated_at = now()",
                (self.source.name, self.source.application_id, when),
            )

    def _record_gap(self, start: datetime, end: datetime) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO backfill_gaps (source, application_id, gap_from, gap_to, reason) VALUES (%s, %s, %s, %s,"
                " 'older than the storage retention') ON CONFLICT DO NOTHING",
                (self.source.name, self.source.application_id, start, end),
            )

    # -- a run ----------------------------------------------------------------------------------------------------
    def run(self, since: datetime | None = None, until: datetime | None = None) -> BackfillReport:
        """Fetch and feed the uplinks after ``since`` (default: the cursor minus the margin) up to ``until``."""
        self.running = True
        report = BackfillReport()
        try:
            self._run(report, since, until)
        except StorageRefused as e:
            report.state, report.error = "refused", str(e)
        except StorageError as e:
            report.state, report.error = "failed", str(e)
        except psycopg.Error as e:
            report.state, report.error = "failed", f"database: {type(e).__name__}: {e}"
        finally:
            self.running = False
            self.last, self.last_run = report, time.time()
        return report

    def _run(self, report: BackfillReport, since: datetime | None, until: datetime | None) -> None:
        now = datetime.now(UTC)
        oldest = now - timedelta(seconds=self.config.retention)
        cursor = report.cursor = self.cursor()
        if since is None:
            since = oldest if cursor is None else cursor - timedelta(seconds=self.config.margin)
        if since < oldest:
            if cursor is not None and cursor < oldest:
                report.gap = (cursor, oldest)
                self._record_gap(cursor, oldest)
                log.warning(
                    "backfill gap older than the storage keeps: recorded, not fetched",
                    extra={"source": self.source.name, "from": cursor.isoformat(), "to": oldest.isoformat()},
                )
            since = oldest + timedelta(seconds=1)  # the storage may drop the oldest second while we ask
        run = _Run(report, since)
        attempts, pause = 0, _PAUSE_MIN
        while True:
            if self.stop.is_set():
                report.state = "stopped"
                return
            report.requests += 1
            asked = run.after
            try:
                n = self._page(run, until)
            except (StorageRateLimited, StorageCut) as e:
                if not self._flush(run):
                    report.state = "stopped"
                    return
                attempts += 1
                report.retries += 1
                if attempts >= self.config.attempts:
                    raise
                wait = pause
                if isinstance(e, StorageRateLimited) and e.retry_after is not None:
                    wait = min(e.retry_after, _RETRY_AFTER_MAX)
                else:
                    pause = min(pause * 2, _PAUSE_MAX)
                log.info(
                    "backfill answer incomplete: resuming from the cursor",
                    extra={"source": self.source.name, "error": str(e)[:200], "wait_s": wait, "attempt": attempts},
                )
                if self._sleep(wait):
                    report.state = "stopped"
                    return
                continue
            if not self._flush(run):
                report.state = "stopped"
                return
            attempts, pause = 0, _PAUSE_MIN
            if n < self.config.page_size:
                report.state = "caught_up"
                return
            if run.after == asked:  # a full page, all received at the instant asked from: asking again is the same
                raise StorageCut(f"a page of {n} uplinks all received at {asked}: raise backfill.page_size")

    def _page(self, run: _Run, until: datetime | None) -> int:
        """One request; returns how many uplinks it gave. Chunks are fed (and the cursor moved) while reading."""
        n = 0
        for up in self.client.uplinks(run.after, until, self.config.page_size):
            n += 1
            self._add(run, up)
            if len(run.chunk_topics) >= _CHUNK and not self._flush(run):
                raise StorageCut("stopped while feeding")
        return n

    def _add(self, run: _Run, up: StoredUplink) -> None:
        run.chunk_topics.append(f"v3/{self.source.username}/devices/{up.device_id or 'unknown'}/up")
        run.chunk_payloads.append(up.message)
        if up.received_at > run.chunk_newest:  # RFC 3339 in UTC with "Z": the text orders as the time does
            run.chunk_newest = up.received_at

    def _flush(self, run: _Run) -> bool:
        """Feed the chunk; once committed, move the cursor to its newest uplink. False when the feed stopped."""
        if not run.chunk_topics:
            return True
        if self.stop.is_set() or not self.feed.put(run.chunk_topics, run.chunk_payloads):
            return False
        report = run.report
        report.fetched += len(run.chunk_topics)
        run.chunk_topics, run.chunk_payloads = [], []
        if run.chunk_newest:
            run.after = run.chunk_newest  # the exact text: the storage's times have nanoseconds
            try:
                newest = datetime.fromisoformat(run.chunk_newest)
            except ValueError:
                newest = None
            if newest is not None and (report.cursor is None or newest > report.cursor):
                report.cursor = newest
                self._save_cursor(newest)
        if self.on_progress is not None:
            self.on_progress(report)
        return True


class BackfillScheduler:
    """Runs a source's backfill in its own thread: at start, after each reconnect (:meth:`trigger`) and every
    ``interval`` seconds. A refused key is logged once as an error until a run succeeds again."""

    def __init__(self, backfill: Backfill, on_report: Callable[[str, BackfillReport], None] | None = None) -> None:
        self.backfill = backfill
        self.on_report = on_report
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_error = ""

    def start(self) -> None:
        self._wake.set()
        self._thread = threading.Thread(target=self._loop, name=f"backfill-{self.backfill.source.name}", daemon=True)
        self._thread.start()

    def trigger(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.backfill.stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.backfill.close()

    def _loop(self) -> None:
        b = self.backfill
        while not b.stop.is_set():
            self._wake.wait(b.config.interval)
            if b.stop.is_set():
                return
            self._wake.clear()
            started = time.monotonic()
            report = b.run()
            self._log(report, time.monotonic() - started)
            if self.on_report is not None:
                self.on_report(b.source.name, report)

    def _log(self, report: BackfillReport, seconds: float) -> None:
        name = self.backfill.source.name
        if report.state in ("refused", "failed"):
            extra: dict[str, Any] = {"source": name, "error": report.error}
            if report.state == "refused":
                extra["hint"] = (
                    f"check the API key in ${self.backfill.source.api_key_env} (rights: read application traffic), "
                    "the application id and that the Storage Integration is enabled"
                )
            if report.error != self._logged_error:
                log.error(f"backfill {report.state}: MQTT ingest goes on", extra=extra)
                self._logged_error = report.error
            else:
                log.debug(f"backfill {report.state} again", extra=extra)
            return
        self._logged_error = ""
        log.info(
            "backfill run",
            extra={
                "source": name,
                "state": report.state,
                "fetched": report.fetched,
                "requests": report.requests,
                "cursor": report.cursor.isoformat() if report.cursor else None,
                "seconds": round(seconds, 3),
            },
        )
