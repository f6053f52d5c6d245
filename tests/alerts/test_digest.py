"""The daily digest through the outbox: one message per channel and local day with the day's counts, routed like
the state changes, retried like them, and none when a channel has no digest hour or is disabled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import psycopg
import pytest
from alertstest import Planter, SmtpServer, WebhookReceiver, add_channel

from stadtpuls.alerts.digest import queue_digests
from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.notify import Sender, SenderConfig
from stadtpuls.alerts.store import acknowledge

TZ = "Europe/Berlin"  # CET in March: a digest hour of 7 is 06:00 UTC
D1 = datetime(2026, 3, 2, tzinfo=UTC)
SECRET = "hook-secret-0123"


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, WebhookReceiver]]:
    daily, ops = WebhookReceiver(SECRET), WebhookReceiver(SECRET)
    yield daily, ops
    daily.close()
    ops.close()


def test_one_digest_per_channel_and_day_with_the_days_counts(
    conn: psycopg.Connection, plant: Planter, receivers: tuple[WebhookReceiver, WebhookReceiver]
) -> None:
    daily, ops = receivers
    add_channel(conn, "daily", "webhook", daily.url, secret=SECRET, digest_hour=7, digest_only=True)
    add_channel(conn, "ops", "webhook", ops.url, secret=SECRET)  # changes only: no digest hour
    add_channel(conn, "crit-daily", "webhook", ops.url, secret=SECRET, digest_hour=7, digest_only=True,
                min_severity="critical")  # fmt: skip
    add_channel(conn, "off", "webhook", daily.url, secret=SECRET, digest_hour=7, enabled=False)
    a, b, c = (plant.device(interval_s=3600) for _ in range(3))
    for dev in (a, b, c):
        plant.state(dev, D1 + timedelta(hours=5))  # silent from 08:00 UTC on
    reporting: set[str] = set()
    sender = Sender(SenderConfig(public_url="https://hub.example", timezone=TZ))
    ids: dict[str, int] = {}
    try:
        t = D1 + timedelta(hours=6, minutes=30)
        while t <= D1 + timedelta(days=2, hours=9):
            for dev in reporting:
                plant.state(dev, t)
            evaluate(conn, now=t, next_service=t + timedelta(days=1))
            if not ids:
                ids = dict(conn.execute("SELECT subject, alert_id FROM alerts").fetchall())
            if t == D1 + timedelta(hours=12, minutes=30):
                assert acknowledge(conn, ids[a], actor="k1", note="", now=t)
            if t == D1 + timedelta(hours=15, minutes=30):
                reporting.add(c)  # c reports again (its alert resolves at the next round)
            if t == D1 + timedelta(days=1, hours=10, minutes=30):
                reporting.add(b)
            queue_digests(conn, now=t, timezone=TZ)
            assert queue_digests(conn, now=t, timezone=TZ) == 0  # a second round queues nothing more
            sender.send_due(conn, now=t)
            t += timedelta(hours=1)
    finally:
        sender.close()

    assert daily.bad_signatures == ops.bad_signatures == 0
    assert daily.changes() == []  # digest only
    assert sorted(ops.changes()) == sorted(
        [(ids[a], "open"), (ids[b], "open"), (ids[c], "open"), (ids[a], "acknowledged")]
        + [(ids[c], "resolved"), (ids[b], "resolved")]
    )
    digests = daily.digests()
    assert [d["day"] for d in digests] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert [datetime.fromisoformat(d["at"]) for d in digests] == [D1 + timedelta(days=k, hours=6) for k in range(3)]
    counts = [(d["opened"], d["acknowledged"], d["resolved"], d["active_count"]) for d in digests]
    assert counts == [(0, 0, 0, 0), (3, 1, 1, 2), (0, 0, 1, 1)]
    assert digests[1]["by_rule"] == [{"rule_id": "device-silent", "severity": "warning", "open": 1, "acknowledged": 1}]
    assert [(x["subject"], x["state"]) for x in digests[1]["active"]] == [(a, "acknowledged"), (b, "open")]
    assert digests[2]["active"][0]["link"] == f"https://hub.example/operator/alerts#alert-{ids[a]}"
    assert daily.accepted[0]["link"] == "https://hub.example/operator/alerts"
    # the critical-only channel's digests: routed like its changes, so empty days, but one each day
    assert [(d["day"], d["opened"], d["active_count"]) for d in ops.digests()] == [
        ("2026-03-02", 0, 0),
        ("2026-03-03", 0, 0),
        ("2026-03-04", 0, 0),
    ]
    rows = conn.execute(
        "SELECT channel_id, count(*), bool_and(status = 'sent') FROM notifications WHERE digest_day IS NOT NULL"
        " GROUP BY channel_id ORDER BY channel_id"
    ).fetchall()
    assert rows == [("crit-daily", 3, True), ("daily", 3, True)]  # none for the disabled channel nor for ops


def test_digest_mail_in_the_towns_language_is_retried_after_a_refused_login(
    conn: psycopg.Connection, plant: Planter, tmp_path: Path
) -> None:
    smtp = SmtpServer(tmp_path)
    try:
        add_channel(conn, "crew", "email", "crew@town.example", digest_hour=7, digest_only=True)
        dev = plant.device(interval_s=3600)
        plant.state(dev, D1 + timedelta(hours=5))
        evaluate(conn, now=D1 + timedelta(hours=9), next_service=D1 + timedelta(days=1))
        assert conn.execute("SELECT count(*) FROM notifications").fetchone() == (0,)  # digest only: no change sent
        at = D1 + timedelta(days=1, hours=6)  # 07:00 local
        assert queue_digests(conn, now=at - timedelta(seconds=1), timezone=TZ) == 1  # the day before's (empty)
        assert queue_digests(conn, now=at, timezone=TZ) == 1
        url = f"smtp://alerts:right@127.0.0.1:{smtp.port}"
        cfg = SenderConfig(
            public_url="https://hub.example", timezone=TZ, language="de", smtp_url=url, smtp_ca_file=smtp.cert
        )
        sender = Sender(cfg)
        smtp.password = "other"
        try:
            assert sender.send_due(conn, now=at).failed == 2
            smtp.password = "right"
            assert sender.send_due(conn, now=at + timedelta(seconds=29)).sent == 0  # retried after 30 s
            assert sender.send_due(conn, now=at + timedelta(seconds=30)).sent == 2
            assert sender.send_due(conn, now=at + timedelta(hours=1)).sent == 0
        finally:
            sender.close()
    finally:
        smtp.stop()
    first, second = (message_from_bytes(m.content, policy=policy.default) for m in smtp.messages)
    assert first["Subject"] == "[stadtpuls] Tagesbericht 2026-03-02: 0 aktiv, 0 neu, 0 behoben"
    assert second["Subject"] == "[stadtpuls] Tagesbericht 2026-03-03: 1 aktiv, 1 neu, 0 behoben"
    body = second.get_content()
    assert "In den 24 Stunden bis 2026-03-03 07:00 CET: 1 neu, 0 bestätigt, 0 behoben." in body
    assert "  device-silent (warning): 1 offen, 0 bestätigt" in body
    since = "silent since 2026-03-02 05:00 UTC (4.0 report intervals)"
    assert f"- [warning] device-silent {dev}: {since} (2026-03-02 10:00, offen)\r\n" in body
    assert "  https://hub.example/operator/alerts#alert-1" in body
    assert "Alle Alarme im Betriebsportal: https://hub.example/operator/alerts" in body


def test_digest_settings_of_a_channel_are_checked_in_the_import() -> None:
    from stadtpuls.alerts.store import ChannelError, load_config

    _, [ch] = load_config(
        "channels:\n  - {id: crew, kind: email, target: a@b.example, digest_hour: 7, digest_only: true}"
    )
    assert (ch.digest_hour, ch.digest_only) == (7, True)
    for bad, field in (
        ("digest_hour: 24", "digest_hour"),
        ("digest_hour: '7'", "digest_hour"),
        ("digest_only: true", "digest_only"),  # a digest-only channel without a digest hour would hear nothing
        ("digest_hour: 7, digest_only: 1", "digest_only"),
    ):
        with pytest.raises(ChannelError) as e:
            load_config(f"channels:\n  - {{id: crew, kind: email, target: a@b.example, {bad}}}")
        assert e.value.field == field
