"""``stadtpuls backfill --source NAME --since TIME [--until TIME]``: a backfill by hand, with a summary.

The run is the ingest's (:class:`ingest.backfill.Backfill`: the source's cursor moves, a gap older than the storage
keeps is recorded), but its uplinks are committed here, chunk by chunk, through the same pipeline and writer
(:class:`CommitFeed`), so the summary can tell what was new: fetched, new, already stored, dead-lettered. A progress
bar (stderr) shows the uplinks fetched and the time reached. Exit codes: 0 done, 1 refused or failed (the error is
printed), 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import psycopg
from tqdm import tqdm

from stadtpuls.logs import configure_logging
from stadtpuls.settings import load

from .backfill import Backfill, BackfillReport
from .commit import Committer, MessageBatch, Unavailable
from .metrics import Metrics
from .pipeline import Pipeline
from .registry import load_registry
from .sources import SourcesError, TtsSource, load_sources
from .writer import Writer

__all__ = ["CommitFeed", "setup"]


class CommitFeed:
    """Commits each chunk at once through a pipeline and a writer of its own, counting into ``metrics``."""

    def __init__(self, database_url: str, *, max_message_bytes: int = 65536, store_simulated: bool = False) -> None:
        with psycopg.connect(database_url, autocommit=True, connect_timeout=10) as conn:
            registry = load_registry(conn)
        self.metrics = Metrics()
        pipeline = Pipeline(registry, max_message_bytes=max_message_bytes, store_simulated=store_simulated)
        self.committer = Committer(pipeline, self.metrics)
        self.writer = Writer(database_url)

    def put(self, topics: list[str], payloads: list[bytes]) -> bool:
        batch = MessageBatch(topics, payloads, time.time())
        self.committer.commit(batch, self.writer)
        return True

    def counts(self) -> dict[str, int]:
        m = self.metrics
        dead = sum(s.value for metric in m.dead_letters.collect() for s in metric.samples if s.name.endswith("_total"))
        return {"new": int(m.stored._value.get()), "already_stored": int(m.duplicates._value.get()), "dead": int(dead)}  # noqa: SLF001

    def close(self) -> None:
        self.writer.close()


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r} (e.g. 2026-12-01T00:00Z)") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _run(args: argparse.Namespace) -> int:
    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    if settings.database_url is None:
        sys.stderr.write("stadtpuls: STADTPULS_DATABASE_URL not set\n")
        return 2
    try:
        sources = load_sources(settings)
    except SourcesError as e:
        sys.stderr.write(f"stadtpuls: {e}\n")
        return 2
    tts = {s.name: s for s in sources if isinstance(s, TtsSource)}
    source = tts.get(args.source)
    if source is None:
        names = ", ".join(tts) or "none (STADTPULS_SOURCES_FILE lists the sources)"
        sys.stderr.write(f"stadtpuls: no TTS source {args.source!r}; TTS sources: {names}\n")
        return 2
    url = settings.database_url.get_secret_value()
    feed = CommitFeed(url, max_message_bytes=settings.max_message_bytes, store_simulated=settings.store_simulated)
    bar = tqdm(desc=f"backfill {source.name}", unit=" uplinks", file=sys.stderr, disable=args.quiet)

    def progress(report: BackfillReport) -> None:
        bar.update(report.fetched - bar.n)
        if report.cursor is not None:
            bar.set_postfix_str(report.cursor.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), refresh=False)

    backfill = Backfill(source, url, feed, on_progress=progress)
    try:
        report = backfill.run(since=args.since, until=args.until)
    except Unavailable as e:
        report = BackfillReport(state="failed", error=f"database: {e}")
    finally:
        bar.close()
        backfill.close()
        feed.close()
    counts = feed.counts()
    cursor = report.cursor.isoformat() if report.cursor else "-"
    sys.stdout.write(
        f"{source.name}: fetched {report.fetched}, new {counts['new']}, already stored {counts['already_stored']},"
        f" dead-lettered {counts['dead']}; {report.requests} requests, {report.retries} retries;"
        f" cursor {cursor}; {report.state}\n"
    )
    if report.gap is not None:
        sys.stdout.write(
            f"gap recorded (older than the storage keeps): {report.gap[0].isoformat()} .. {report.gap[1].isoformat()}\n"
        )
    if report.state in ("refused", "failed"):
        sys.stderr.write(f"stadtpuls: backfill {report.state}: {report.error}\n")
        return 1
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", required=True, help="the TTS source's name in STADTPULS_SOURCES_FILE")
    p.add_argument("--since", required=True, type=_time, help="start, RFC 3339 (e.g. 2026-12-01T00:00Z; UTC if bare)")
    p.add_argument("--until", type=_time, help="end, RFC 3339 (default: now)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
