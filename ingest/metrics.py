"""Prometheus metrics of the ingest service, and the HTTP endpoint that serves them with ``/health``.

Each :class:`Metrics` has its own registry (several ingest instances can live in one process, e.g. in tests).
``serve(port)`` answers ``GET /metrics`` (Prometheus text) and ``GET /health`` (JSON: status, database, mqtt,
spool, last commit); ``/health`` is 200 while the service can make progress and 503 when it is degraded
(database down with the spool full, or the broker unreachable).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "reason_label"]

_DIGITS = re.compile(r"\d+")


def reason_label(stage: str, reason: str) -> str:
    """A bounded label for a dead-letter reason: numbers as N, the detail after the first colon dropped (codec
    reasons keep the codec's message, without the codec id)."""
    text = reason.split(": ", 1)[-1] if stage == "codec" else reason.split(":", 1)[0]
    return _DIGITS.sub("N", text)[:60]


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "stadtpuls_ingest_"
        self.received = Counter(p + "received", "MQTT messages received", registry=r)
        self.stored = Counter(p + "stored", "uplinks stored (new rows)", registry=r)
        self.duplicates = Counter(p + "duplicates", "uplinks already stored (redeliveries)", registry=r)
        self.domain_rows = Counter(p + "domain_rows", "domain rows stored", ["table"], registry=r)
        self.dead_letters = Counter(p + "dead_letters", "dead letters", ["stage", "reason"], registry=r)
        self.ignored = Counter(p + "ignored", "messages that are not readings", ["kind"], registry=r)
        self.events = Counter(p + "events", "joins, statuses and log events", ["kind"], registry=r)
        self.gaps = Counter(p + "fcnt_gaps", "frame-counter gaps detected", registry=r)
        self.missing = Counter(p + "fcnt_missing", "frames missing in detected gaps", registry=r)
        self.batches = Counter(p + "batches", "batches committed", registry=r)
        self.db_errors = Counter(p + "database_errors", "failed batch writes", ["kind"], registry=r)
        self.spooled = Counter(p + "spooled", "messages written to the spool", registry=r)
        self.replayed = Counter(p + "replayed", "messages replayed from the spool", registry=r)
        self.spool_messages = Gauge(p + "spool_messages", "messages waiting in the spool", registry=r)
        self.spool_bytes = Gauge(p + "spool_bytes", "bytes waiting in the spool", registry=r)
        self.queue_depth = Gauge(p + "queue_depth", "messages received, not yet in a batch", registry=r)
        self.lag = Gauge(p + "lag_seconds", "hub receive to commit of the last batch", registry=r)
        self.reading_age = Gauge(p + "reading_age_seconds", "commit time minus newest reading time", registry=r)
        self.database_up = Gauge(p + "database_up", "1 when the last write reached the database", registry=r)
        self.mqtt_connected = Gauge(p + "mqtt_connected", "1 while connected to the broker", registry=r)
        self.source_connected = Gauge(p + "source_connected", "1 while the source is connected", ["source"], registry=r)
        self.source_last_message = Gauge(
            p + "source_last_message_timestamp_seconds",
            "when the source's last message arrived",
            ["source"],
            registry=r,
        )
        self.backfill_fetched = Counter(
            p + "backfill_fetched", "uplinks fetched from the TTS Storage Integration", ["source"], registry=r
        )
        self.backfill_runs = Counter(p + "backfill_runs", "backfill runs by outcome", ["source", "state"], registry=r)
        self.backfill_lag = Gauge(
            p + "backfill_lag_seconds", "now minus the newest uplink the backfill stored", ["source"], registry=r
        )
        self.batch_seconds = Histogram(
            p + "batch_seconds",
            "time to parse, decode and commit one batch",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.batch_size = Histogram(
            p + "batch_messages",
            "messages per batch",
            registry=r,
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000),
        )
        self.last_commit = 0.0
        self._server: ThreadingHTTPServer | None = None
        self.health_extra: Callable[[], dict[str, Any]] = dict

    def dead_letter(self, stage: str, reason: str, n: int = 1) -> None:
        self.dead_letters.labels(stage, reason_label(stage, reason)).inc(n)

    def count_batch(self, result: Any, dead: Any, env: Any) -> None:
        """Count a committed batch: its write result, dead letters and the envelope side events."""
        self.stored.inc(result.stored)
        self.duplicates.inc(result.duplicates)
        for table, n in result.domain.items():
            self.domain_rows.labels(table).inc(n)
        for d in dead:
            self.dead_letter(d.stage, d.reason)
        for ignored in env.ignored:
            self.ignored.labels(ignored.kind).inc()
        for kind, events in (("join", env.joins), ("status", env.statuses), ("log", env.logs)):
            if events:
                self.events.labels(kind).inc(len(events))
        self.gaps.inc(result.gaps)
        self.missing.inc(result.missing)
        self.batches.inc()
        self.last_commit = time.time()
        if len(env):
            newest = float(env.time.max().astype("datetime64[us]").astype("int64")) / 1e6
            self.reading_age.set(max(0.0, self.last_commit - newest))

    def health(self) -> tuple[int, dict[str, Any]]:
        extra = self.health_extra()
        db_up = self.database_up._value.get() == 1  # noqa: SLF001 - prometheus_client has no public getter
        mqtt_up = self.mqtt_connected._value.get() == 1  # noqa: SLF001
        degraded = not mqtt_up or (not db_up and extra.get("spool_full", False))
        body = {
            "status": "degraded" if degraded else "ok",
            "database": "up" if db_up else "down",
            "mqtt": "connected" if mqtt_up else "disconnected",
            "last_commit_age_s": round(time.time() - self.last_commit, 3) if self.last_commit else None,
            **extra,
        }
        return (503 if degraded else 200), body

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Serve /metrics and /health on ``port`` in a daemon thread; returns the bound port."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] == "/metrics":
                    code, ctype, data = 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
                elif self.path.split("?")[0] == "/health":
                    code, body = metrics.health()
                    ctype, data = "application/json", orjson.dumps(body)
                else:
                    code, ctype, data = 404, "text/plain", b"not found\n"
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="ingest-metrics", daemon=True).start()
        return int(self._server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
