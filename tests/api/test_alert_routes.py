"""Alert routes: list with filters, one alert with its history, acknowledge, rules, notifications and resend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from apitest import ADMIN, OP, ApiClient, Seeder

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.kinds import default_rules
from stadtpuls.alerts.store import save_rule

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


@pytest.fixture
def alerts(seed: Seeder) -> dict[str, str]:
    """Three silent devices (two at bins, one battery low) evaluated at T0; a webhook channel."""
    conn: psycopg.Connection = seed.conn
    for rule in default_rules(battery_low_v=3.2, battery_low_pct=20):
        save_rule(conn, rule)
    seed.site("bin-a", "bin", threshold_pct=80)
    seed.site("bin-b", "bin", threshold_pct=80)
    devs = {"a": seed.device("bin-a"), "b": seed.device("bin-b"), "c": seed.device(None)}
    for dev in devs.values():
        conn.execute("INSERT INTO device_state (dev_eui, last_time) VALUES (%s, %s)", (dev, T0 - timedelta(hours=5)))
    conn.execute(
        "INSERT INTO bin_levels (time, dev_eui, site_id, battery_v) VALUES (%s, %s, 'bin-a', 3.0)",
        (T0 - timedelta(hours=5), devs["a"]),
    )
    conn.execute(
        "INSERT INTO notification_channels (channel_id, kind, target, secret) VALUES ('ops', 'webhook', %s, 's')",
        ("http://127.0.0.1:9/hook",),
    )
    evaluate(conn, now=T0, next_service=T0 + timedelta(days=1))
    return devs


def test_alerts_need_the_operator_key(client: ApiClient) -> None:
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.post("/api/v1/alerts/1/ack", json={}).status_code == 401
    assert client.put("/api/v1/alert-rules/x", json={"kind": "bin_full"}).status_code == 401


def test_alert_list_filters_and_orders_active_first(client: ApiClient, alerts: dict[str, str]) -> None:
    body = client.get("/api/v1/alerts", headers=OP).json()
    assert body["count"] == 4
    assert [a["rule_id"] for a in body["data"]].count("device-silent") == 3
    assert client.get("/api/v1/alerts?rule=battery-low", headers=OP).json()["data"][0]["subject"] == alerts["a"]
    assert {a["subject"] for a in client.get("/api/v1/alerts?site=bin-b", headers=OP).json()["data"]} == {alerts["b"]}
    assert client.get("/api/v1/alerts?state=resolved", headers=OP).json()["count"] == 0
    assert client.get("/api/v1/alerts?since=2026-03-03T00:00:00Z", headers=OP).json()["count"] == 0
    assert client.get("/api/v1/alerts?state=closed", headers=OP).status_code == 422


def test_acknowledge_records_key_and_note_and_queues_notifications(
    client: ApiClient, alerts: dict[str, str], seed: Seeder
) -> None:
    first = client.get("/api/v1/alerts?rule=device-silent&site=bin-a", headers=OP).json()["data"][0]
    r = client.post(f"/api/v1/alerts/{first['alert_id']}/ack", headers=OP, json={"note": "crew informed"})
    assert r.status_code == 200, r.text
    acked = r.json()
    assert (acked["state"], acked["acknowledged_by"], acked["ack_note"]) == (
        "acknowledged",
        "settings",
        "crew informed",
    )
    assert [e["state"] for e in acked["events"]] == ["open", "acknowledged"]
    again = client.post(f"/api/v1/alerts/{first['alert_id']}/ack", headers=OP, json={"note": ""})
    assert again.status_code == 409
    assert client.post("/api/v1/alerts/99999/ack", headers=OP, json={}).status_code == 404
    changes = seed.conn.execute(
        "SELECT e.state FROM notifications n JOIN alert_events e USING (event_id) WHERE e.alert_id = %s ORDER BY 1",
        (first["alert_id"],),
    ).fetchall()
    assert changes == [("acknowledged",), ("open",)]


def test_rules_are_listed_with_effective_values_and_changed_with_checks(
    client: ApiClient, alerts: dict[str, str]
) -> None:
    rules = {r["rule_id"]: r for r in client.get("/api/v1/alert-rules", headers=OP).json()["data"]}
    assert rules["device-silent"]["values"] == {"every_s": 0.0, "intervals": 3.0}
    r = client.put(
        "/api/v1/alert-rules/bins-90",
        headers=ADMIN,
        json={"kind": "bin_full", "severity": "critical", "params": {"threshold_pct": 90}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["values"]["threshold_pct"] == 90 and r.json()["values"]["hysteresis_pct"] == 5
    bad = client.put("/api/v1/alert-rules/bins-90", headers=OP, json={"kind": "bin_full", "params": {"limit": 1}})
    assert bad.status_code == 422 and "params.limit: unknown" in bad.json()["detail"]
    assert client.put("/api/v1/alert-rules/x", headers=OP, json={"kind": "nope"}).status_code == 422


def test_dead_notifications_are_listed_and_resent(client: ApiClient, alerts: dict[str, str], seed: Seeder) -> None:
    seed.conn.execute("UPDATE notifications SET status = 'dead', attempts = 6, last_error = 'HTTP 500'")
    dead = client.get("/api/v1/notifications?status=dead", headers=OP).json()
    assert dead["count"] == 4 and dead["data"][0]["last_error"] == "HTTP 500"
    nid = dead["data"][0]["notification_id"]
    assert client.post(f"/api/v1/notifications/{nid}/resend", headers=OP).status_code == 202
    assert client.get("/api/v1/notifications?status=dead", headers=OP).json()["count"] == 3
    assert client.get("/api/v1/notifications?status=pending", headers=OP).json()["data"][0]["attempts"] == 0
    assert client.post("/api/v1/notifications/999999/resend", headers=OP).status_code == 404


def test_a_dead_digest_is_listed_and_resent(client: ApiClient, alerts: dict[str, str], seed: Seeder) -> None:
    from stadtpuls.alerts.digest import queue_digests

    seed.conn.execute("UPDATE notification_channels SET digest_hour = 7 WHERE channel_id = 'ops'")
    assert queue_digests(seed.conn, now=T0, timezone="Europe/Berlin") == 1
    seed.conn.execute("UPDATE notifications SET status = 'dead' WHERE digest_day IS NOT NULL")
    [digest] = client.get("/api/v1/notifications?status=dead", headers=OP).json()["data"]
    assert (digest["digest_day"], digest["alert_id"], digest["change"], digest["time"]) == (
        "2026-03-02",
        None,
        None,
        None,
    )
    assert client.get("/api/v1/notifications?status=pending", headers=OP).json()["count"] == 4  # the changes
    assert client.post(f"/api/v1/notifications/{digest['notification_id']}/resend", headers=OP).status_code == 202
    assert client.get("/api/v1/notifications?status=dead", headers=OP).json()["count"] == 0
