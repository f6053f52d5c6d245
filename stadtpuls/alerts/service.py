"""The alerts service (``stadtpuls alerts run``): every ``alerts_interval`` seconds one evaluation round, then the
daily digests that are due are queued (:mod:`.digest`) and the sender delivers what is due; a Prometheus gauge
counts the active alerts per rule.

At start the default rules are added where missing (a new town gets working alerts; changed rules are kept).
A database outage skips rounds, it does not stop the service; SIGTERM ends it after the current round.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from stadtpuls.logs import get_logger
from stadtpuls.planning import day_start, next_service_day
from stadtpuls.settings import Settings

from .digest import queue_digests
from .evaluate import RoundResult, evaluate
from .hub import fetch_ingest_status, record_ingest_status
from .kinds import default_rules
from .notify import Sender, SenderConfig, SendStats
from .store import OPEN_COUNTS, save_rule

__all__ = ["AlertService", "RoundReport", "ensure_default_rules", "next_round_start", "sender_config"]

log = get_logger("stadtpuls.alerts")


@dataclass
class RoundReport:
    evaluated: RoundResult
    sent: SendStats
    digests: int = 0  # daily digests queued


def next_round_start(now: datetime, settings: Settings) -> datetime:
    """Start of the next collection round after ``now`` (the bin prediction's horizon)."""
    today = now.astimezone(day_start(now.date(), settings.timezone).tzinfo).date()
    start = day_start(today, settings.timezone, settings.pickup_start_hour)
    if today.weekday() in settings.service_days and start > now:
        return start
    return day_start(next_service_day(today, settings.service_days), settings.timezone, settings.pickup_start_hour)


def ensure_default_rules(conn: psycopg.Connection, settings: Settings) -> None:
    with conn.transaction():
        for rule in default_rules(battery_low_v=settings.battery_low_v, battery_low_pct=settings.battery_low_pct):
            save_rule(conn, rule, replace=False)


def sender_config(settings: Settings) -> SenderConfig:
    return SenderConfig(
        public_url=settings.alerts_public_url or f"http://{settings.api_host}:{settings.api_port}",
        timezone=settings.timezone,
        language=settings.alerts_language,
        smtp_url=settings.smtp_url.get_secret_value() if settings.smtp_url else None,
        smtp_from=settings.smtp_from,
        smtp_ca_file=settings.smtp_ca_file,
        retry_base_s=settings.alerts_retry_base_s,
        max_attempts=settings.alerts_max_attempts,
    )


class AlertService:
    def __init__(self, settings: Settings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.sender = Sender(sender_config(settings))
        self.stop = threading.Event()
        self.registry = CollectorRegistry()
        self.active = Gauge(
            "stadtpuls_alerts_active", "active alerts per rule and state", ["rule", "state"], registry=self.registry
        )
        self.changes = Counter(
            "stadtpuls_alert_changes", "alert state changes written", ["rule", "change"], registry=self.registry
        )
        self.notifications = Counter(
            "stadtpuls_notifications", "notification deliveries by outcome", ["outcome"], registry=self.registry
        )

    def round(self, conn: psycopg.Connection, now: datetime | None = None) -> RoundReport:
        if self.settings.alerts_ingest_health_url:  # the present state, also when a past time is replayed
            status = fetch_ingest_status(self.settings.alerts_ingest_health_url)
            record_ingest_status(conn, status, datetime.now(UTC))
        now = now or datetime.now(UTC)
        evaluated = evaluate(conn, now=now, next_service=next_round_start(now, self.settings))
        digests = queue_digests(conn, now=now, timezone=self.settings.timezone)
        sent = self.sender.send_due(conn, now=datetime.now(UTC))
        for rule_id, n in evaluated.opened.items():
            self.changes.labels(rule_id, "open").inc(n)
        for rule_id, n in evaluated.resolved.items():
            self.changes.labels(rule_id, "resolved").inc(n)
        for outcome in ("sent", "failed", "dead", "held"):
            self.notifications.labels(outcome).inc(getattr(sent, outcome))
        for rule_id, open_, acked in conn.execute(OPEN_COUNTS):
            self.active.labels(rule_id, "open").set(open_)
            self.active.labels(rule_id, "acknowledged").set(acked)
        return RoundReport(evaluated, sent, digests)

    def run(self, *, once: bool = False) -> int:
        if self.settings.alerts_metrics_port and not once:
            start_http_server(self.settings.alerts_metrics_port, registry=self.registry)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
        log.info("alerts started", extra={"interval": self.settings.alerts_interval})
        started = False
        try:
            while not self.stop.is_set():
                try:
                    with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                        if not started:
                            ensure_default_rules(conn, self.settings)
                            started = True
                        report = self.round(conn)
                    log.info(
                        "alerts round",
                        extra={
                            "opened": sum(report.evaluated.opened.values()),
                            "resolved": sum(report.evaluated.resolved.values()),
                            "sent": report.sent.sent,
                            "failed": report.sent.failed,
                        },
                    )
                except psycopg.OperationalError as e:
                    log.warning("database not reachable; round skipped", extra={"error": str(e)})
                if once:
                    break
                self.stop.wait(self.settings.alerts_interval)
        finally:
            self.sender.close()
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
