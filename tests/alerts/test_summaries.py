"""The day summaries and health rows (migration 0015) the radio, battery and bin rules read: kept by each round for
the devices the ingest touched, equal to a summary built from scratch, and read as they stood when a past time is
replayed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from alertstest import Planter

from stadtpuls.alerts.evaluate import evaluate

T0 = datetime(2026, 3, 2, tzinfo=UTC)
COLUMNS = (
    "dev_eui, day, last_time, uplinks, rssi_p50, snr_p50, sf_sum, sf_n, battery_v, battery_v_min, fill_pct, fill_n"  # noqa: E501
)


def summaries(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(f"SELECT {COLUMNS} FROM device_daily ORDER BY dev_eui, day").fetchall()


def test_a_round_summarises_only_the_devices_touched_since_the_last(conn: psycopg.Connection, plant: Planter) -> None:
    a, b = plant.bin("bin-a"), plant.bin("bin-b")
    plant.bin_levels(a, T0, T0 + timedelta(hours=47), fill="10 + h", battery_v="3.6 - h / 100.0")
    plant.uplinks(a, T0, T0 + timedelta(hours=47), rssi="-80 - h %% 7")
    plant.bin_levels(b, T0, T0 + timedelta(hours=23), fill="5")
    first = evaluate(conn, now=T0 + timedelta(days=2), next_service=T0 + timedelta(days=3))
    assert first.failed == {} and first.summarized == 3  # a: two days, b: one
    # the first round was half an hour ago, the batches before it an hour ago
    conn.execute("UPDATE device_state SET updated_at = now() - interval '1 hour'")
    conn.execute("UPDATE alert_summary_state SET refreshed_at = now() - interval '30 minutes'")
    plant.bin_levels(b, T0 + timedelta(hours=24), T0 + timedelta(hours=25), fill="7", battery_v="3.1")
    later = evaluate(conn, now=T0 + timedelta(days=2, minutes=10), next_service=T0 + timedelta(days=3))
    assert later.summarized == 2  # only b, from the day before its newest summarised day on
    day = summaries(conn)
    # the same figures as a summary of everything built from scratch
    conn.execute("TRUNCATE device_daily, device_health")
    conn.execute("SELECT device_daily_build(%s, %s)", (T0.date(), T0.date() + timedelta(days=2)))
    assert summaries(conn) == day
    by_day = {(r[0], r[1]): r for r in day}
    a1 = by_day[(a, T0.date())]
    assert (a1[3], a1[4], a1[7], a1[8], a1[10]) == (24, -82.5, 24, pytest.approx(3.37), pytest.approx(33))
    health = dict(conn.execute("SELECT dev_eui, battery_v FROM device_health").fetchall())
    assert health == {a: pytest.approx(3.13), b: pytest.approx(3.1)}


def test_a_replayed_time_reads_the_summaries_as_they_stood_then(conn: psycopg.Connection, plant: Planter) -> None:
    dev = plant.bin("bin-1")
    plant.bin_levels(dev, T0, T0 + timedelta(hours=20), fill="10", battery_v="CASE WHEN h < 10 THEN 3.6 ELSE 3.0 END")
    evaluate(conn, now=T0 + timedelta(hours=21), next_service=T0 + timedelta(days=3))
    stored = conn.execute("SELECT battery_v, last_time FROM device_health").fetchone()
    assert stored == (pytest.approx(3.0), T0 + timedelta(hours=20))
    asof = conn.execute(
        "SELECT battery_v, battery_time, last_time FROM device_health_asof(%s)", (T0 + timedelta(hours=9, minutes=30),)
    ).fetchone()
    assert asof == (pytest.approx(3.6), T0 + timedelta(hours=9), T0 + timedelta(hours=9))
    conn.execute("TRUNCATE alerts, alert_events, notifications")
    conn.execute("UPDATE alert_rules SET evaluated_at = NULL")
    replay = evaluate(conn, now=T0 + timedelta(hours=9, minutes=30), next_service=T0 + timedelta(days=3))
    assert replay.opened["battery-low"] == 0  # the low readings came after the replayed time
    assert evaluate(conn, now=T0 + timedelta(hours=10), next_service=T0 + timedelta(days=3)).opened["battery-low"] == 1


def test_a_device_summarised_by_the_last_refresh_is_not_summarised_again(
    conn: psycopg.Connection, plant: Planter
) -> None:
    a, b = plant.bin("bin-a"), plant.bin("bin-b")
    plant.bin_levels(a, T0, T0 + timedelta(hours=1), fill="10")
    plant.bin_levels(b, T0, T0 + timedelta(hours=1), fill="10")
    first = evaluate(conn, now=T0 + timedelta(hours=2), next_service=T0 + timedelta(days=3))
    assert first.summarized == 2
    # both were touched within the refresh's margin before it; only b, touched again since, is summarised again
    plant.bin_levels(b, T0 + timedelta(hours=2), T0 + timedelta(hours=2), fill="20")
    later = evaluate(conn, now=T0 + timedelta(hours=2, minutes=10), next_service=T0 + timedelta(days=3))
    assert later.summarized == 1
    fills = dict(conn.execute("SELECT dev_eui, fill_pct FROM device_health").fetchall())
    assert fills == {a: 10, b: 20}
    assert {"summaries", "battery-low", "bin-full", "device-silent"} <= set(later.seconds)
    assert all(s >= 0 for s in later.seconds.values())
