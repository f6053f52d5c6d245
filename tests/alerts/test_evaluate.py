"""The evaluator on a real database: each rule kind opens and resolves its alerts, once per state change."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from alertstest import Planter

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.kinds import Rule
from stadtpuls.alerts.store import acknowledge, save_rule

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
FAR = T0 + timedelta(days=60)


def run(conn: psycopg.Connection, now: datetime, next_service: datetime = FAR) -> tuple[Counter[str], Counter[str]]:
    r = evaluate(conn, now=now, next_service=next_service)
    return +r.opened, +r.resolved


def events(conn: psycopg.Connection) -> list[tuple[int, str]]:
    return conn.execute("SELECT alert_id, state FROM alert_events ORDER BY event_id").fetchall()


def test_silent_device_opens_once_and_resolves_when_it_reports(conn: psycopg.Connection, plant: Planter) -> None:
    quiet, fine = plant.device(interval_s=600), plant.device(interval_s=600)
    plant.state(quiet, T0 - timedelta(minutes=31))
    plant.state(fine, T0 - timedelta(minutes=20))
    assert run(conn, T0) == (Counter({"device-silent": 1}), Counter())
    assert run(conn, T0 + timedelta(minutes=1)) == (Counter(), Counter())  # still silent: no second alert
    [alert] = plant.alerts()
    assert (alert["subject"], alert["state"], alert["rule_id"]) == (quiet, "open", "device-silent")
    assert alert["value"] == pytest.approx(3.1)
    plant.state(quiet, T0 + timedelta(minutes=2))
    assert run(conn, T0 + timedelta(minutes=3)) == (Counter(), Counter({"device-silent": 1}))
    assert [s for _, s in events(conn)] == ["open", "resolved"]


def test_silent_counts_each_devices_own_report_interval(conn: psycopg.Connection, plant: Planter) -> None:
    often, hourly, hourly_late = (plant.device(interval_s=s) for s in (600, 3600, 3600))
    plant.state(often, T0 - timedelta(minutes=40))  # 4 intervals
    plant.state(hourly, T0 - timedelta(hours=2))  # 2 intervals: not yet
    plant.state(hourly_late, T0 - timedelta(hours=4))  # 4 intervals
    assert run(conn, T0) == (Counter({"device-silent": 2}), Counter())
    assert {a["subject"]: a["value"] for a in plant.alerts()} == {
        often: pytest.approx(4),
        hourly_late: pytest.approx(4),
    }


def test_battery_hovering_at_the_limit_does_not_flap(conn: psycopg.Connection, plant: Planter) -> None:
    dev = plant.bin("bin-1")
    # 3.19 V (below 3.2), then 3.21 and 3.22 (inside the 0.05 V band), then 3.30 (clear)
    for hour, volts in enumerate((3.19, 3.21, 3.19, 3.22, 3.30)):
        t = T0 + timedelta(hours=hour)
        plant.bin_levels(dev, t, t, fill="10", battery_v=str(volts))
        run(conn, t)
    assert [s for _, s in events(conn)] == ["open", "resolved"]
    [alert] = plant.alerts()
    assert alert["opened_at"] == T0 and alert["resolved_at"] == T0 + timedelta(hours=4)


def test_battery_percent_limit_and_disabled_rule(conn: psycopg.Connection, plant: Planter) -> None:
    dev = plant.bin("bin-1")
    conn.execute("INSERT INTO bin_levels (time, dev_eui, site_id, battery_pct) VALUES (%s, %s, 'bin-1', 15)", (T0, dev))
    plant.touch(dev)
    save_rule(conn, Rule("battery-low", "battery_low", enabled=False))
    assert run(conn, T0) == (Counter(), Counter())
    save_rule(conn, Rule("battery-low", "battery_low", params={"low_pct": 20}))
    assert run(conn, T0) == (Counter({"battery-low": 1}), Counter())
    assert plant.alerts()[0]["message"] == "battery 15 %"


def test_bin_over_threshold_and_predicted_before_next_round(conn: psycopg.Connection, plant: Planter) -> None:
    full, rising, slow = plant.bin("full", 80), plant.bin("rising", 80), plant.bin("slow", 80)
    start, now = T0, T0 + timedelta(hours=10)
    plant.bin_levels(full, start, now, fill="40 + 4.5 * h")  # 85 % now
    plant.bin_levels(rising, start, now, fill="20 + 4 * h")  # 60 % now, +4 %/h: 80 % in 5 h
    plant.bin_levels(slow, start, now, fill="20 + 0.1 * h")  # 21 %
    opened, _ = run(conn, now, next_service=now + timedelta(hours=2))
    assert opened == Counter({"bin-full": 1})
    assert {a["subject"] for a in plant.alerts()} == {full}
    assert run(conn, now + timedelta(minutes=9), next_service=now + timedelta(hours=6)) == (Counter(), Counter())
    opened, _ = run(conn, now + timedelta(minutes=10), next_service=now + timedelta(hours=6))  # due again
    assert opened == Counter({"bin-full": 1})
    by_subject = {a["subject"]: a for a in plant.alerts()}
    assert set(by_subject) == {full, rising}
    assert by_subject[rising]["site_id"] == "rising"
    assert "expected 83 %" in by_subject[rising]["message"]  # 60 % + 4 %/h for 5 h 50 min


def test_frame_counter_reset_and_lost_frames(conn: psycopg.Connection, plant: Planter) -> None:
    reset, new, lossy = plant.device(), plant.device(), plant.device()
    plant.uplinks(reset, T0 - timedelta(days=2), T0 - timedelta(days=1))
    plant.state(reset, T0, last_join=T0 - timedelta(hours=1))
    plant.state(new, T0, last_join=T0 - timedelta(hours=1))  # first join of a new device: no reset
    plant.state(lossy, T0)
    conn.execute(
        "INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to) VALUES (%s, %s, 100, 111), (%s, %s, 200, 201)",
        (T0 - timedelta(hours=3), lossy, T0 - timedelta(hours=2), lossy),
    )
    assert run(conn, T0) == (Counter({"frame-loss": 2}), Counter())
    assert {a["subject"]: a["value"] for a in plant.alerts()} == {reset: 0, lossy: 14}
    opened, resolved = run(conn, T0 + timedelta(hours=25))  # (by now the three are silent too)
    assert resolved == Counter({"frame-loss": 2}) and "frame-loss" not in opened


def test_radio_getting_worse(conn: psycopg.Connection, plant: Planter) -> None:
    worse, steady, climbing = plant.device(), plant.device(), plant.device()
    start = T0 - timedelta(days=14)
    plant.uplinks(worse, start, T0 - timedelta(hours=1), rssi="CASE WHEN h < 168 THEN -90 ELSE -101 END")
    plant.uplinks(steady, start, T0 - timedelta(hours=1), rssi="-90 - (h %% 5)")
    plant.uplinks(climbing, start, T0 - timedelta(hours=1), sf="CASE WHEN h < 168 THEN 7 ELSE 9 END")
    assert run(conn, T0) == (Counter({"radio-worse": 2}), Counter()), plant.alerts()
    assert {a["subject"] for a in plant.alerts()} == {worse, climbing}


def test_parking_space_stuck_while_its_lot_changes(conn: psycopg.Connection, plant: Planter) -> None:
    conn.execute("INSERT INTO sites (site_id, kind) VALUES ('lot', 'lot')")
    spaces = [plant.device() for _ in range(5)]
    for i, dev in enumerate(spaces):
        stuck = i == 0
        conn.execute(
            """INSERT INTO parking_events (time, dev_eui, lot_id, occupied)
               SELECT %s + make_interval(hours => h), %s, 'lot', CASE WHEN %s THEN true ELSE h %% 2 = 0 END
               FROM generate_series(0, 47) h""",
            (T0 - timedelta(hours=48), dev, stuck),
        )
    assert run(conn, T0) == (Counter({"parking-stuck": 1}), Counter())
    [alert] = plant.alerts()
    assert alert["subject"] == spaces[0] and "occupied for 48 h while 4 spaces of lot lot changed" in alert["message"]


def test_hub_dead_letters_and_ingest_lag(conn: psycopg.Connection, plant: Planter) -> None:
    conn.execute(
        """INSERT INTO dead_letters (received_at, stage, reason)
           SELECT %s - make_interval(secs => s), 'envelope', 'not JSON' FROM generate_series(1, 100) s""",
        (T0,),
    )
    dev = plant.device()
    conn.execute(
        """INSERT INTO uplinks (time, dedup_key, dev_eui, lns, received_at)
           SELECT %s - make_interval(secs => s), dedup_key_of(gen_random_uuid()), %s, 'tts', %s
           FROM generate_series(1, 50) s""",
        (T0 - timedelta(minutes=5), dev, T0),
    )
    assert run(conn, T0) == (Counter({"dead-letters": 1, "ingest-lag": 1}), Counter())
    assert {a["subject"] for a in plant.alerts()} == {"hub"}
    assert run(conn, T0 + timedelta(minutes=20)) == (Counter(), Counter({"dead-letters": 1, "ingest-lag": 1}))


def test_acknowledged_alert_resolves_by_itself_and_history_is_kept(conn: psycopg.Connection, plant: Planter) -> None:
    dev = plant.device()
    plant.state(dev, T0 - timedelta(hours=5))
    run(conn, T0)
    assert len(plant.alerts()) == 1, plant.alerts()
    [alert] = plant.alerts()
    assert acknowledge(conn, alert["alert_id"], actor="k1", note="truck on its way", now=T0)
    assert not acknowledge(conn, alert["alert_id"], actor="k1", note="again", now=T0)
    assert run(conn, T0 + timedelta(hours=1)) == (Counter(), Counter())  # still silent, acknowledged
    plant.state(dev, T0 + timedelta(hours=2))
    assert run(conn, T0 + timedelta(hours=2)) == (Counter(), Counter({"device-silent": 1}))
    [alert] = plant.alerts()
    assert (alert["state"], alert["acknowledged_by"], alert["ack_note"]) == ("resolved", "k1", "truck on its way")
    assert [s for _, s in events(conn)] == ["open", "acknowledged", "resolved"]
    # silent again: a new alert, the old one stays in the history
    run(conn, T0 + timedelta(hours=10))
    assert [a["state"] for a in plant.alerts()] == ["resolved", "open"], plant.alerts()


@pytest.mark.slow  # 360 rounds over a month of readings
def test_a_simulated_month_gives_exactly_the_planted_faults(conn: psycopg.Connection, plant: Planter) -> None:
    """Twenty bins reporting hourly for a month; four faults planted. Evaluated every two hours of simulated time,
    the rounds open exactly the alerts of the faults, at the right time, and no others."""
    end = T0 + timedelta(days=30)
    bins = [plant.bin(f"bin-{i:02d}") for i in range(20)]
    silent, draining, reset, filling = bins[:4]
    silent_from = T0 + timedelta(days=12)
    reset_at = T0 + timedelta(days=5, hours=10)
    for dev in bins:
        last = silent_from if dev == silent else end
        battery = "3.6 - 0.6 * h / 720.0" if dev == draining else "3.6"  # crosses 3.2 V at h = 480 (day 20)
        fill = "CASE WHEN h BETWEEN 312 AND 384 THEN 10 + (h - 312) ELSE 10 END" if dev == filling else "10 + h %% 3"
        plant.bin_levels(dev, T0, last, fill=fill, battery_v=battery)
        plant.uplinks(dev, T0, last)
        plant.state(dev, last, last_join=reset_at if dev == reset else None)

    opened: list[tuple[str, str, datetime]] = []
    t = T0 + timedelta(hours=2)
    while t <= end:
        before = {a["alert_id"] for a in plant.alerts()}
        evaluate(conn, now=t, next_service=t + timedelta(days=1))
        opened += [(a["rule_id"], a["subject"], t) for a in plant.alerts() if a["alert_id"] not in before]
        t += timedelta(hours=2)

    by_rule = {(rule, subject): when for rule, subject, when in opened}
    assert len(opened) == len(by_rule) == 4, opened
    assert by_rule[("device-silent", silent)] == silent_from + timedelta(hours=4)  # 3 intervals passed, next round
    assert by_rule[("battery-low", draining)] == T0 + timedelta(hours=482)  # first round after h = 480
    assert by_rule[("frame-loss", reset)] == reset_at  # a round falls on the rejoin
    # 80 % is reached at h = 382; with one day of look-ahead the rising trend is seen well before
    assert T0 + timedelta(hours=312) < by_rule[("bin-full", filling)] < T0 + timedelta(hours=382)


def test_a_rule_runs_at_its_cadence_and_again_after_a_change(conn: psycopg.Connection, plant: Planter) -> None:
    dev = plant.bin("bin-1")
    plant.bin_levels(dev, T0, T0, fill="10", battery_v="3.0")
    assert run(conn, T0)[0] == Counter({"battery-low": 1})
    plant.bin_levels(dev, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5), fill="10", battery_v="3.6")
    assert run(conn, T0 + timedelta(minutes=5)) == (Counter(), Counter())  # every_s 600: not due yet
    assert run(conn, T0 + timedelta(minutes=10))[1] == Counter({"battery-low": 1})
    plant.bin_levels(dev, T0 + timedelta(minutes=11), T0 + timedelta(minutes=11), fill="10", battery_v="3.0")
    save_rule(conn, Rule("battery-low", "battery_low", params={"every_s": 3600}))  # a changed rule runs next round
    assert run(conn, T0 + timedelta(minutes=11))[0] == Counter({"battery-low": 1})


def test_a_failing_rule_costs_only_itself(conn: psycopg.Connection, plant: Planter) -> None:
    dev = plant.device()
    plant.state(dev, T0 - timedelta(hours=5))
    save_rule(conn, Rule("battery-low", "battery_low", params={"window_h": 1e12}))  # no such interval
    result = evaluate(conn, now=T0, next_service=FAR)
    assert set(result.failed) == {"battery-low"} and "out of range" in result.failed["battery-low"]
    assert result.opened["device-silent"] == 1
    assert [a["rule_id"] for a in plant.alerts()] == ["device-silent"]
