"""``stadtpuls ingest``: the long-running MQTT ingest service.

Wires the parts together: the MQTT source (network thread) feeds the inbox, one worker thread writes batches,
a rollup job refreshes the history rollups every ``STADTPULS_ROLLUP_INTERVAL`` seconds (:mod:`ingest.rollups`),
the spool lives in ``STADTPULS_SPOOL_DIR/<client id>``, metrics and ``/health`` are served on
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
from pathlib import Path
from typing import Any

from stadtpuls.logs import configure_logging, get_logger
from stadtpuls.settings import Settings, load

from .inbox import Inbox
from .metrics import Metrics
from .mqtt import MqttConfig, MqttSource
from .rollups import RollupJob
from .spool import Spool, SpoolError
from .worker import Worker, WorkerConfig
from .writer import Writer

__all__ = ["IngestService", "setup"]

log = get_logger("stadtpuls.ingest")


class IngestService:
    """The running service; ``start()`` returns once everything runs, ``stop()`` shuts down gracefully."""

    def __init__(
        self,
        settings: Settings,
        *,
        database_url: str,
        mqtt_url: str,
        metrics_port: int | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        s = settings
        self.inbox = Inbox(s.queue_max)
        self.metrics = Metrics()
        self.source = MqttSource(
            MqttConfig(
                url=mqtt_url,
                client_id=s.mqtt_client_id,
                topics=list(s.mqtt_topics),
                share_group=s.mqtt_share_group,
                qos=s.mqtt_qos,
                receive_maximum=s.mqtt_receive_maximum,
                ca_file=s.mqtt_ca_file,
                cert_file=s.mqtt_cert_file,
                key_file=s.mqtt_key_file,
            ),
            self.inbox,
        )
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
            ),
            self.inbox,
            self.source,
            self.writer,
            self.spool,
            self.metrics,
        )
        self.metrics_port = s.metrics_port if metrics_port is None else metrics_port
        self.metrics.health_extra = self._health
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker_error: BaseException | None = None

    def _health(self) -> dict[str, Any]:
        self.metrics.mqtt_connected.set(1 if self.source.connected.is_set() else 0)
        return {
            "spool_messages": self.spool.messages,
            "spool_bytes": self.spool.pending_bytes,
            "spool_full": self.spool.size >= self.spool.max_bytes * 0.99,
            "queue": len(self.inbox),
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
        self.source.start()
        self.metrics.mqtt_connected.set(1 if self.source.connected.is_set() else 0)
        log.info(
            "ingest running",
            extra={"topics": ",".join(self.source.config.filters()), "batch_size": self.settings.batch_size},
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
            self.metrics.mqtt_connected.set(1 if self.source.connected.is_set() else 0)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reading, flush and commit (or spool) what was received, ack it, disconnect."""
        log.info("shutting down: stop reading, flush, ack, disconnect")
        self.source.pause()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.source.close()
        if self.rollups is not None:
            self.rollups.stop(timeout)
        self.writer.close()
        self.spool.close()
        self.metrics.close()
        log.info("ingest stopped")

    def request_stop(self) -> None:
        self._stop.set()


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
    if settings.database_url is None or settings.mqtt_url is None:
        missing = [
            n
            for n, v in (("STADTPULS_DATABASE_URL", settings.database_url), ("STADTPULS_MQTT_URL", settings.mqtt_url))
            if v is None
        ]
        sys.stderr.write(f"stadtpuls: {' and '.join(missing)} not set\n")
        return 2
    try:
        service = IngestService(
            settings,
            database_url=settings.database_url.get_secret_value(),
            mqtt_url=settings.mqtt_url.get_secret_value(),
        )
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
