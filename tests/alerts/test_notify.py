"""The sender against real local servers: a webhook receiver that checks signatures, an SMTP server with STARTTLS
and login (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alertstest import Planter, SmtpServer, WebhookReceiver, add_channel

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.notify import Sender, SenderConfig, quiet_until
from stadtpuls.alerts.store import RESEND, acknowledge

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SECRET = "hook-secret-0123"


def config(**overrides: Any) -> SenderConfig:
    values: dict[str, Any] = {"public_url": "https://hub.example", "retry_base_s": 30, "max_attempts": 3}
    values.update(overrides)
    return SenderConfig(**values)


def silent_alert(conn: psycopg.Connection, plant: Planter, at: datetime = NOW) -> str:
    dev = plant.device()
    plant.state(dev, at - timedelta(hours=5))
    evaluate(conn, now=at, next_service=at + timedelta(days=1))
    return dev


def outbox(conn: psycopg.Connection) -> list[tuple[str, int, str | None]]:
    return conn.execute("SELECT status, attempts, last_error FROM notifications ORDER BY notification_id").fetchall()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET)
    yield r
    r.close()


def test_webhook_is_signed_and_sent_once_per_change(
    conn: psycopg.Connection, plant: Planter, receiver: WebhookReceiver
) -> None:
    add_channel(conn, "ops", "webhook", receiver.url, secret=SECRET)
    dev = silent_alert(conn, plant)
    sender = Sender(config())
    try:
        assert sender.send_due(conn, now=NOW).sent == 1
        evaluate(conn, now=NOW + timedelta(minutes=1), next_service=NOW)  # unchanged: nothing new to send
        assert sender.send_due(conn, now=NOW + timedelta(minutes=1)).sent == 0
        plant.state(dev, NOW + timedelta(minutes=2))
        evaluate(conn, now=NOW + timedelta(minutes=2), next_service=NOW)
        assert sender.send_due(conn, now=NOW + timedelta(minutes=2)).sent == 1
    finally:
        sender.close()
    assert receiver.bad_signatures == 0
    assert receiver.changes() == [(1, "open"), (1, "resolved")]
    body = receiver.accepted[0]
    assert body["alert"]["subject"] == dev and body["alert"]["rule_id"] == "device-silent"
    assert body["link"] == "https://hub.example/operator/alerts#alert-1"


def test_webhook_retried_after_a_500_with_backoff(
    conn: psycopg.Connection, plant: Planter, receiver: WebhookReceiver
) -> None:
    receiver.fail = 1
    add_channel(conn, "ops", "webhook", receiver.url, secret=SECRET)
    silent_alert(conn, plant)
    sender = Sender(config())
    try:
        assert sender.send_due(conn, now=NOW).failed == 1
        assert outbox(conn) == [("pending", 1, f"POST {receiver.url}: HTTP 500")]
        assert sender.send_due(conn, now=NOW + timedelta(seconds=29)).sent == 0  # not due before 30 s
        assert sender.send_due(conn, now=NOW + timedelta(seconds=30)).sent == 1
    finally:
        sender.close()
    assert receiver.refused == 1 and receiver.changes() == [(1, "open")]
    assert outbox(conn)[0][:2] == ("sent", 2)


def test_failing_webhook_becomes_dead_and_can_be_resent(
    conn: psycopg.Connection, plant: Planter, receiver: WebhookReceiver
) -> None:
    receiver.fail = 3
    add_channel(conn, "ops", "webhook", receiver.url, secret=SECRET)
    silent_alert(conn, plant)
    sender = Sender(config(max_attempts=3))
    try:
        for wait in (0, 30, 90):
            sender.send_due(conn, now=NOW + timedelta(seconds=wait))
        assert outbox(conn)[0][:2] == ("dead", 3)
        assert sender.send_due(conn, now=NOW + timedelta(days=1)).sent == 0  # dead stays dead
        [(nid,)] = conn.execute("SELECT notification_id FROM notifications").fetchall()
        assert conn.execute(RESEND, {"notification_id": nid}).fetchone() == (nid,)
        assert sender.send_due(conn, now=datetime.now(UTC)).sent == 1
    finally:
        sender.close()
    assert receiver.changes() == [(1, "open")]


def test_routing_by_rule_and_severity_and_quiet_hours(
    conn: psycopg.Connection, plant: Planter, receiver: WebhookReceiver
) -> None:
    add_channel(conn, "battery-only", "webhook", receiver.url, secret=SECRET, rules=["battery-low"])
    add_channel(conn, "critical-only", "webhook", receiver.url, secret=SECRET, min_severity="critical")
    add_channel(conn, "night", "webhook", receiver.url, secret=SECRET, quiet_from=22, quiet_to=6)
    silent_alert(conn, plant, at=NOW.replace(hour=23))  # 00:00 in Berlin: quiet
    assert conn.execute("SELECT channel_id FROM notifications").fetchall() == [("night",)]
    sender = Sender(config(timezone="Europe/Berlin"))
    try:
        stats = sender.send_due(conn, now=NOW.replace(hour=23))
        assert (stats.held, stats.sent) == (1, 0)
        assert sender.send_due(conn, now=NOW.replace(hour=23) + timedelta(hours=5)).sent == 0
        assert sender.send_due(conn, now=NOW.replace(hour=23) + timedelta(hours=6)).sent == 1  # 06:00 local
    finally:
        sender.close()
    assert receiver.changes() == [(1, "open")]


def test_quiet_hours_span_midnight() -> None:
    at = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 Berlin
    assert quiet_until(at, 22, 6, "Europe/Berlin") == datetime(2026, 3, 3, 5, tzinfo=UTC)
    assert quiet_until(at, 23, 6, "Europe/Berlin") is None
    assert quiet_until(at, 9, 17, "Europe/Berlin") is None
    assert quiet_until(at, None, None, "Europe/Berlin") is None


# -- e-mail ------------------------------------------------------------------------------------------------------
@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[SmtpServer]:
    s = SmtpServer(tmp_path)
    yield s
    s.stop()


def test_email_over_starttls_with_login_in_the_towns_language(
    conn: psycopg.Connection, plant: Planter, smtp_server: SmtpServer
) -> None:
    add_channel(conn, "crew", "email", "crew@town.example")
    smtp_server.password = "other"  # the first login is refused
    dev = silent_alert(conn, plant)
    url = f"smtp://alerts:right@127.0.0.1:{smtp_server.port}"
    cfg = config(smtp_url=url, smtp_ca_file=smtp_server.cert, language="de", timezone="Europe/Berlin")
    sender = Sender(cfg)
    try:
        stats = sender.send_due(conn, now=NOW)
        assert stats.failed == 1 and not smtp_server.messages
        [(status, attempts, error)] = outbox(conn)
        assert (status, attempts) == ("pending", 1)
        assert error is not None and error.startswith("SMTP login to 127.0.0.1 refused: 535")
        smtp_server.password = "right"
        assert sender.send_due(conn, now=NOW + timedelta(seconds=30)).sent == 1
        acknowledge(conn, 1, actor="k1", note="Fahrer informiert", now=NOW + timedelta(minutes=1))
        assert sender.send_due(conn, now=NOW + timedelta(minutes=1)).sent == 1
    finally:
        sender.close()
    first, second = (m.content.decode() for m in smtp_server.messages)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["crew@town.example"]] * 2
    assert "Subject: [stadtpuls] Neuer Alarm: device-silent " + dev in first
    assert "Seit: 2026-03-02 13:00 CET" in first
    assert "Im Betriebsportal öffnen: https://hub.example/operator/alerts#alert-1" in first
    assert "Alarm bestätigt" in second and "Notiz: Fahrer informiert" in second


def test_email_without_smtp_url_is_a_clear_error(conn: psycopg.Connection, plant: Planter) -> None:
    add_channel(conn, "crew", "email", "crew@town.example")
    silent_alert(conn, plant)
    sender = Sender(config())
    try:
        assert sender.send_due(conn, now=NOW).failed == 1
    finally:
        sender.close()
    assert outbox(conn) == [("pending", 1, "STADTPULS_SMTP_URL is not set")]
