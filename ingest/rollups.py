"""The rollup job: refreshes the history rollups for the spans the writer queued.

The writer queues, in each batch's transaction, the span of the readings it stored per lot, line and bin
(``rollup_dirty``, migrations 0008, 0019). This job, a thread of the ingest service, calls
``rollups_refresh_pending()`` every ``interval`` seconds: it takes the queue, merges the spans per lot, line and
bin, and recomputes the quarters, hours and days they can change (on TimescaleDB the continuous aggregates follow
by themselves), in one transaction. Queuing instead of refreshing in the batch
keeps the write path as fast as before and merges a busy lot's many batches into one refresh. A failed refresh
rolls back and leaves the queue for the next round; readers serve queued spans from the readings meanwhile. On
shutdown the job runs a last round, after the worker has committed what it received.
"""

from __future__ import annotations

import threading
import time

import psycopg

from stadtpuls.logs import get_logger

__all__ = ["RollupJob", "refresh_pending"]

log = get_logger("stadtpuls.ingest.rollups")


def refresh_pending(conn: psycopg.Connection) -> int:
    """Refresh every queued span in one transaction; returns the lots, lines and bins refreshed."""
    with conn.transaction():
        row = conn.execute("SELECT rollups_refresh_pending()").fetchone()
    return int(row[0]) if row else 0


class RollupJob:
    """Runs :func:`refresh_pending` on the database at ``url`` every ``interval`` seconds, in a thread."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollups", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        stopping = False
        while not stopping:  # a last round after stop(): shutdown leaves the rollups current
            stopping = self._stop.wait(self.interval)
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(self.url, connect_timeout=5)
                started = time.perf_counter()
                n = refresh_pending(conn)
                self.refreshed += n
                if n:
                    log.info("rollups refreshed", extra={"keys": n, "seconds": round(time.perf_counter() - started, 3)})
            except psycopg.Error as e:  # the queue stays; the next round tries again
                log.warning("rollup refresh failed", extra={"error": str(e)[:200]})
        if conn is not None:
            conn.close()
