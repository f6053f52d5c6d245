"""``stadtpuls alerts`` as a process: one notification per state change, none repeated after it is killed and
restarted, and one daily digest however often it is killed around the digest hour; defaults for a new town; the
YAML import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import psycopg
import pytest
from alertstest import Planter, WebhookReceiver, add_channel

from stadtpuls.alerts.kinds import KINDS
from stadtpuls.alerts.service import next_round_start
from stadtpuls.settings import Settings

from ..conftest import Cli

SECRET = "hook-secret-0123"


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.1)


@pytest.fixture
def service(clean_db: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    env = {
        **os.environ,
        "STADTPULS_DATABASE_URL": clean_db,
        "STADTPULS_ALERTS_METRICS_PORT": "0",
        "STADTPULS_ALERTS_INTERVAL": "0.3",
    }

    def start(**settings: str) -> subprocess.Popen[bytes]:
        log = open(tmp_path / f"alerts-{len(started)}.log", "wb")  # noqa: SIM115 - closed after the test
        logs.append(log)
        cmd = [sys.executable, "-m", "stadtpuls.cli", "alerts", "run"]
        p = subprocess.Popen(cmd, env={**env, **settings}, stdout=log, stderr=log)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)
    for log in logs:
        log.close()


@pytest.mark.slow  # a drill: the service killed and started again
def test_no_notification_lost_or_repeated_across_a_kill_and_restart(
    clean_db: str, plant: Planter, conn: psycopg.Connection, service: Callable[..., subprocess.Popen[bytes]]
) -> None:
    receiver = WebhookReceiver(SECRET, drop_repeats=True)
    try:
        add_channel(conn, "ops", "webhook", receiver.url, secret=SECRET)
        now = datetime.now(UTC)
        devs = [plant.device(interval_s=600) for _ in range(3)]
        for dev in devs:
            plant.state(dev, now - timedelta(hours=1))
        first = service()
        wait_for(lambda: len(receiver.changes()) == 3)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = service()
        rounds_before = conn.execute("SELECT count(*) FROM notifications").fetchone()
        time.sleep(2.0)  # several rounds of the restarted service
        assert second.poll() is None
        assert conn.execute("SELECT count(*) FROM notifications").fetchone() == rounds_before
        assert sorted(c for _, c in receiver.changes()) == ["open"] * 3
        plant.state(devs[0], datetime.now(UTC))  # the device reports again: its alert resolves
        wait_for(lambda: len(receiver.changes()) == 4)
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0
    assert receiver.repeats <= 1  # at most the one delivery the kill caught between its answer and its commit
    assert sorted(receiver.changes()) == [(1, "open"), (1, "resolved"), (2, "open"), (3, "open")]


@pytest.mark.slow  # a drill: the service killed twice and started again
def test_a_digest_is_sent_once_when_the_service_is_killed_around_the_digest_hour(
    conn: psycopg.Connection, service: Callable[..., subprocess.Popen[bytes]]
) -> None:
    receiver = WebhookReceiver(SECRET, fail=1)
    now = datetime.now(UTC)
    try:
        add_channel(conn, "daily", "webhook", receiver.url, secret=SECRET, digest_hour=now.hour, digest_only=True)
        add_channel(conn, "changes", "webhook", receiver.url, secret=SECRET)  # no digest hour: no digest
        settings = {"STADTPULS_TIMEZONE": "UTC", "STADTPULS_ALERTS_RETRY_BASE_S": "1"}
        first = service(**settings)
        wait_for(lambda: receiver.refused == 1)  # queued at the first round; its first delivery refused
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = service(**settings)  # retries the queued digest, queues no second one
        wait_for(lambda: len(receiver.digests()) == 1)
        second.send_signal(signal.SIGKILL)
        second.wait(10)
        last_round = conn.execute("SELECT max(evaluated_at) FROM alert_rules").fetchone()
        third = service(**settings)
        wait_for(lambda: conn.execute("SELECT max(evaluated_at) FROM alert_rules").fetchone() != last_round)
        time.sleep(1.0)  # more rounds of the third service within the same digest hour
        assert third.poll() is None
        third.send_signal(signal.SIGTERM)
        assert third.wait(10) == 0
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0 and receiver.refused == 1
    [digest] = receiver.digests()
    assert digest["day"] == now.date().isoformat() and digest["opened"] == 0
    rows = conn.execute("SELECT channel_id, digest_day, status, attempts FROM notifications").fetchall()
    assert rows == [("daily", now.date(), "sent", 2)]


def test_a_new_town_gets_the_default_rules_with_its_battery_limits(
    clean_db: str, run_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STADTPULS_BATTERY_LOW_V", "3.4")
    out = run_cli(clean_db, "alerts", "run", "--once")
    assert out.returncode == 0, out.stderr
    with psycopg.connect(clean_db) as c:
        rules = dict(c.execute("SELECT rule_id, params FROM alert_rules").fetchall())
    assert len(rules) == len(KINDS) == 10 and rules["battery-low"] == {"low_v": 3.4, "low_pct": 20.0}


def test_yaml_import_checks_everything_before_saving(clean_db: str, tmp_path: Path, run_cli: Cli) -> None:
    good = tmp_path / "alerts.yaml"
    good.write_text(
        "rules:\n"
        "  - {id: bins-85, kind: bin_full, severity: critical, params: {threshold_pct: 85}}\n"
        "channels:\n"
        "  - {id: crew, kind: email, target: crew@town.example, rules: [bins-85], quiet_hours: [22, 6]}\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {id: fine, kind: device_silent}\n  - {id: typo, kind: bin_full, params: {treshold: 1}}")
    out = run_cli(clean_db, "alerts", "import", str(good))
    assert out.returncode == 0 and out.stdout.strip() == "imported 1 rules, 1 channels"
    out = run_cli(clean_db, "alerts", "import", str(bad))
    assert out.returncode == 1
    assert "rule 'typo': params.treshold: unknown; bin_full takes threshold_pct" in out.stderr
    with psycopg.connect(clean_db) as c:
        assert c.execute("SELECT rule_id, severity, params FROM alert_rules").fetchall() == [
            ("bins-85", "critical", {"threshold_pct": 85.0})
        ]
        assert c.execute("SELECT rules, quiet_from, quiet_to FROM notification_channels").fetchall() == [
            (["bins-85"], 22, 6)
        ]


def test_next_round_start_skips_days_without_collection() -> None:
    settings = Settings(timezone="Europe/Berlin", service_days=[0, 2], pickup_start_hour=7)
    monday_early = datetime(2026, 3, 2, 5, tzinfo=UTC)  # 06:00 Berlin, before Monday's round
    assert next_round_start(monday_early, settings) == datetime(2026, 3, 2, 6, tzinfo=UTC)
    monday_noon = datetime(2026, 3, 2, 11, tzinfo=UTC)
    assert next_round_start(monday_noon, settings) == datetime(2026, 3, 4, 6, tzinfo=UTC)  # Wednesday 07:00


def test_cli_replays_a_time_lists_acknowledges_and_resends(
    clean_db: str, plant: Planter, conn: psycopg.Connection, run_cli: Cli
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(clean_db, "alerts", *args)

    at = datetime(2026, 3, 2, 12, tzinfo=UTC)
    dev = plant.device()
    plant.state(dev, at - timedelta(hours=4))
    add_channel(conn, "ops", "webhook", "http://127.0.0.1:9/unreachable", secret=SECRET)
    out = cli("run", "--at", at.isoformat())
    assert out.returncode == 0 and out.stdout.strip() == "opened 1, resolved 0", out.stderr
    listed = cli("list", "--state", "open").stdout.splitlines()
    assert len(listed) == 1 and listed[0].split("\t")[:5] == ["1", "open", "warning", "device-silent", dev]
    assert cli("ack", "1", "--note", "on it", "--by", "night shift").returncode == 0
    again = cli("ack", "1")
    assert again.returncode == 1 and "alert 1 is not open" in again.stderr
    assert conn.execute("SELECT acknowledged_by, ack_note FROM alerts").fetchone() == ("night shift", "on it")
    conn.execute("UPDATE notifications SET status = 'dead' WHERE notification_id = 1")
    dead = cli("notifications", "--status", "dead").stdout.splitlines()
    assert [line.split("\t")[:4] for line in dead] == [["1", "dead", "ops", "alert 1 open"]]
    assert cli("resend", "1").returncode == 0
    assert conn.execute("SELECT status, attempts FROM notifications WHERE notification_id = 1").fetchone() == (
        "pending",
        0,
    )
    assert cli("resend", "999").returncode == 1
    # a channel with a digest hour: the replayed round queues that day's digest, listed by its day
    conn.execute("UPDATE notification_channels SET digest_hour = 7 WHERE channel_id = 'ops'")
    assert cli("run", "--at", at.isoformat()).returncode == 0
    listed = [line.split("\t")[2:4] for line in cli("notifications").stdout.splitlines()]
    assert listed[0] == ["ops", "digest 2026-03-02"] and ["ops", "alert 1 open"] in listed
    # a backfill of older readings, summarised on demand
    conn.execute("TRUNCATE device_daily, device_health")
    plant.bin_levels(dev, at - timedelta(days=3), at - timedelta(days=3, hours=-5), fill="10", battery_v="2.9")
    out = cli("summarize", "--days", "5")
    assert out.returncode == 0 and out.stdout.strip() == "summarised 1 device-days", out.stderr
    assert conn.execute("SELECT battery_v FROM device_health").fetchone() == (pytest.approx(2.9),)


def test_round_sets_the_active_alerts_gauge_per_rule(clean_db: str, plant: Planter, conn: psycopg.Connection) -> None:
    from stadtpuls.alerts.service import AlertService
    from stadtpuls.alerts.store import acknowledge

    now = datetime.now(UTC)
    for _ in range(3):
        plant.state(plant.device(), now - timedelta(hours=5))
    service = AlertService(Settings(database_url=clean_db), clean_db)
    try:
        report = service.round(conn, now)
        acknowledge(conn, 1, actor="k", note="", now=now)
        service.round(conn, now + timedelta(seconds=1))
    finally:
        service.sender.close()
    assert report.evaluated.opened["device-silent"] == 3

    def sample(name: str, **labels: str) -> float | None:
        return service.registry.get_sample_value(name, labels)

    assert sample("stadtpuls_alerts_active", rule="device-silent", state="open") == 2
    assert sample("stadtpuls_alerts_active", rule="device-silent", state="acknowledged") == 1
    assert sample("stadtpuls_alerts_active", rule="bin-full", state="open") == 0
    assert sample("stadtpuls_alert_changes_total", rule="device-silent", change="open") == 3
