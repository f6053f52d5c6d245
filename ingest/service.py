"""``stadtpuls ingest``: the long-running MQTT ingest service.

Wires the parts together: one MQTT connection per configured source (:mod:`ingest.sources`; each its own network
thread) and, for TTS sources with the Storage Integration, a backfill thread (:mod:`ingest.backfill`) feed the one
inbox; one worker thread writes batches and hands the acks back to the source of each message (:class:`SourceAcks`).
A source that cannot connect retries in the background and never stops the others. A rollup job refreshes the
history rollups every ``STADTPULS_ROLLUP_INTERVAL`` seconds (:mod:`ingest.rollups`). The spool lives in
``STADTPULS_SPOOL_DIR/<client id>``, metrics and ``/health`` (with each source's state) are served on
``STADTPULS_METRICS_PORT``. SIGTERM or Ctrl-C shuts down gracefully: stop reading from the broker, write (or
spool) what was received, acknowledge it, disconnect (the persistent session stays on the broker).
"""

from __future__ import annotations

import argparse
import gc
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stadtpuls.logs import configure_logging, get_logger
from stadtpuls.settings import Settings, load

from .authentic import SourceApplications
from .backfill import Backfill, BackfillReport, BackfillScheduler, InboxFeed
from .codecs.script import Limits, configure_limits
from .inbox import Inbox, Message
from .metrics import Metrics
from .mqtt import MqttSource
from .rollups import RollupJob
from .sources import Source, SourcesError, TtsSource, load_sources, mqtt_config, single_source
from .spool import Spool, SpoolError
from .worker import Worker, WorkerConfig
from .writer import Writer

__all__ = ["IngestService", "SourceAcks", "setup"]

log = get_logger("stadtpuls.ingest")


class SourceAcks:
    """The worker's acker: sends each message's ack to the source that delivered it (``Message.source``)."""

    def __init__(self, handlers: Sequence[MqttSource | InboxFeed]) -> None:
        self.handlers = list(handlers)

    def ack(self, messages: Sequence[Message]) -> int:
        if len(self.handlers) == 1:
            return self.handlers[0].ack(messages)
        by_source: dict[int, list[Message]] = {}
        for m in messages:
            by_source.setdefault(m.source, []).append(m)
        return sum(self.handlers[k].ack(group) for k, group in by_source.items())


class IngestService:
    """The running service; ``start()`` returns once everything runs, ``stop()`` shuts down gracefully."""

    def __init__(
        self,
        settings: Settings,
        *,
        database_url: str,
        mqtt_url: str | None = None,
        sources: list[Source] | None = None,
        metrics_port: int | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        s = settings
        configure_limits(Limits(s.script_time_limit, s.script_memory_limit))
        self.inbox = Inbox(s.queue_max)
        self.metrics = Metrics()
        if sources is None:
            sources = [single_source(mqtt_url)] if mqtt_url else load_sources(s)
        if not sources:
            raise SourcesError(None, ["no source: set STADTPULS_MQTT_URL or STADTPULS_SOURCES_FILE"])
        self.sources = sources
        self._stop = threading.Event()
        self._backfill_stop = threading.Event()
        self.mqtt = [
            MqttSource(mqtt_config(src, s), self.inbox, source=k, on_connected=self._reconnected(src.name))
            for k, src in enumerate(sources)
        ]
        self.source = self.mqtt[0]  # the first source (the only one of a STADTPULS_MQTT_URL configuration)
        handlers: list[MqttSource | InboxFeed] = list(self.mqtt)
        self.backfills: dict[str, BackfillScheduler] = {}
        for src in sources:
            if isinstance(src, TtsSource) and src.backfill.enabled:
                feed = InboxFeed(self.inbox, len(handlers), self._backfill_stop)
                handlers.append(feed)
                backfill = Backfill(src, database_url, feed, stop=threading.Event())
                self.backfills[src.name] = BackfillScheduler(backfill, self._backfill_report)
        self.acks = SourceAcks(handlers)
        safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", s.mqtt_client_id) or "ingest"
        self.spool = Spool(spool_dir or Path(s.spool_dir) / safe_id, s.spool_max_bytes)
        self.writer = Writer(database_url)
        self.rollups = RollupJob(database_url, s.rollup_interval) if s.rollup_interval > 0 else None
        self.worker = Worker(
            WorkerConfig(
                batch_size=s.batch_size,
                flush_interval=s.flush_interval,
                registry_refresh=s.registry_refresh,
                max_message_bytes=s.max_message_bytes,
                store_simulated=s.store_simulated,
                max_clock_skew=s.max_clock_skew,
                applications=_applications(sources),
            ),
            self.inbox,
            self.acks,
            self.writer,
            self.spool,
            self.metrics,
        )
        self.metrics_port = s.metrics_port if metrics_port is None else metrics_port
        self.metrics.health_extra = self._health
        self._thread: threading.Thread | None = None
        self.worker_error: BaseException | None = None

    def _reconnected(self, name: str) -> Callable[[], None]:
        def trigger() -> None:
            scheduler = self.backfills.get(name)
            if scheduler is not None:
                scheduler.trigger()

        return trigger

    def _backfill_report(self, name: str, report: BackfillReport) -> None:
        self.metrics.backfill_runs.labels(name, report.state).inc()
        self.metrics.backfill_fetched.labels(name).inc(report.fetched)

    def _source_gauges(self) -> dict[str, Any]:
        """Set the per-source gauges; returns each source's state for ``/health``."""
        now = time.time()
        states: dict[str, Any] = {}
        m = self.metrics
        for src, client in zip(self.sources, self.mqtt, strict=True):
            connected, last = client.connected.is_set(), client.last_message
            m.source_connected.labels(src.name).set(1 if connected else 0)
            m.source_last_message.labels(src.name).set(last)
            state: dict[str, Any] = {
                "kind": src.kind,
                "connected": connected,
                "last_message_age_s": round(now - last, 3) if last else None,
            }
            scheduler = self.backfills.get(src.name)
            if scheduler is not None:
                b = scheduler.backfill
                report = b.last
                lag = (now - report.cursor.timestamp()) if report.cursor else None
                if lag is not None:
                    m.backfill_lag.labels(src.name).set(lag)
                state["lag_s"] = round(lag, 3) if lag is not None else None
                state["backfill"] = {
                    "state": "running" if b.running else report.state,
                    "cursor": report.cursor.isoformat() if report.cursor else None,
                    "last_run_age_s": round(now - b.last_run, 3) if b.last_run else None,
                    "fetched": report.fetched,
                    "error": report.error or None,
                }
            states[src.name] = state
        m.mqtt_connected.set(1 if all(c.connected.is_set() for c in self.mqtt) else 0)
        return states

    def _health(self) -> dict[str, Any]:
        sources = self._source_gauges()
        return {
            "spool_messages": self.spool.messages,
            "spool_bytes": self.spool.pending_bytes,
            "spool_full": self.spool.size >= self.spool.max_bytes * 0.99,
            "queue": len(self.inbox),
            "sources": sources,
        }

    def start(self) -> None:
        s = self.settings
        window = (self.worker.config.writers + 2) * s.batch_size
        if s.mqtt_receive_maximum < window:
            log.warning(
                "MQTT receive maximum is smaller than the batches in flight: throughput is limited by the window",
                extra={
                    "receive_maximum": s.mqtt_receive_maximum,
                    "batch_size": s.batch_size,
                    "suggested": min(65535, window),
                },
            )
        if self.metrics_port:
            port = self.metrics.serve(self.metrics_port)
            log.info("metrics and health served", extra={"port": port})
        self.worker.refresh_registry(force=True)
        self._thread = threading.Thread(target=self._run_worker, name="ingest-worker", daemon=True)
        self._thread.start()
        if self.rollups is not None:
            self.rollups.start()
        for client in self.mqtt:
            client.start(wait=10.0 if len(self.mqtt) == 1 else 3.0)
        for scheduler in self.backfills.values():
            scheduler.start()
        self._source_gauges()
        log.info(
            "ingest running",
            extra={
                "sources": ",".join(src.name for src in self.sources),
                "topics": ",".join(f for c in self.mqtt for f in c.config.filters()),
                "backfill": ",".join(self.backfills) or None,
                "batch_size": self.settings.batch_size,
            },
        )

    def _run_worker(self) -> None:
        try:
            self.worker.run(self._stop)
        except BaseException as e:  # noqa: BLE001 - reported by stop()/wait(); the service then exits
            self.worker_error = e
            log.exception("ingest worker failed")
            self._stop.set()

    def wait(self) -> None:
        """Block until stop() is requested or the worker dies."""
        while not self._stop.wait(0.5):
            self._source_gauges()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading, flush and commit (or spool) what was received, ack it, disconnect."""
        log.info("shutting down: stop reading, flush, ack, disconnect")
        self._backfill_stop.set()
        for scheduler in self.backfills.values():
            scheduler.stop(timeout=5.0)
        for client in self.mqtt:
            client.pause()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for client in self.mqtt:
            client.close()
        if self.rollups is not None:
            self.rollups.stop(timeout)
        self.writer.close()
        self.spool.close()
        self.metrics.close()
        log.info("ingest stopped")

    def request_stop(self) -> None:
        self._stop.set()


def _applications(sources: list[Source]) -> SourceApplications:
    """Per source position, the source's name and the applications it may deliver (None: any). Positions beyond
    the sources (the backfill feeds) are not limited: their messages come from their TTS application's storage."""
    out: list[tuple[str, frozenset[str]] | None] = []
    for src in sources:
        apps = src.allowed_applications()
        out.append(None if apps is None else (src.name, apps))
    return tuple(out)


def _run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.share_group:
        overrides["mqtt_share_group"] = args.share_group
    if args.client_id:
        overrides["mqtt_client_id"] = args.client_id
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    settings = load(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    if settings.database_url is None or (settings.mqtt_url is None and settings.sources_file is None):
        missing = ["STADTPULS_DATABASE_URL"] if settings.database_url is None else []
        if settings.mqtt_url is None and settings.sources_file is None:
            missing.append("STADTPULS_MQTT_URL (or STADTPULS_SOURCES_FILE)")
        sys.stderr.write(f"stadtpuls: {' and '.join(missing)} not set\n")
        return 2
    try:
        service = IngestService(settings, database_url=settings.database_url.get_secret_value())
    except SourcesError as e:
        sys.stderr.write(f"stadtpuls: {e}\n")
        return 2
    except SpoolError as e:
        sys.stderr.write(f"stadtpuls: spool: {e}\n")
        return 1
    # Batches allocate many short-lived containers and build no reference cycles worth collecting often:
    # collect the start-up objects once, then let generation 0 grow larger before a collection runs.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    previous = {sig: signal.signal(sig, lambda *_: service.request_stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.start()
        service.wait()
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if service.worker_error else 0


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--share-group", help="shared-subscription group (overrides STADTPULS_MQTT_SHARE_GROUP)")
    p.add_argument("--client-id", help="MQTT client id (overrides STADTPULS_MQTT_CLIENT_ID)")
    p.add_argument("--metrics-port", type=int, help="metrics/health port, 0 = off (overrides STADTPULS_METRICS_PORT)")
    p.set_defaults(func=_run)
