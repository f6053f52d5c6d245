"""Streams through the broker into the database: redeliveries, garbage, a database outage, a killed process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from stadtpuls.ingest.service import IngestService
from stadtpuls.simulators.loadgen import make_fleet, make_garbage, make_uplinks
from stadtpuls.simulators.mqtt_raw import publish_all

from .conftest import drop_session, register, scalar, wait_for
from .tcp_proxy import TcpProxy

DOMAIN_ROWS = (
    "SELECT (SELECT count(*) FROM bin_levels) + (SELECT count(*) FROM parking_events)"
    " + (SELECT count(*) FROM passenger_counts) + (SELECT count(*) FROM environment_readings)"
)


def _counter(c: object) -> float:
    return float(c._value.get())  # type: ignore[attr-defined]


def _settled(service: IngestService, total: int) -> bool:
    return _counter(service.metrics.received) >= total and not len(service.inbox) and service.worker._held is None


def test_publishing_the_same_uplinks_twice_stores_them_once(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    fleet = make_fleet(100)
    register(clean_db, fleet.yaml())
    messages = make_uplinks(fleet, 10_000)
    service = run_ingest(clean_db, broker_url)
    publish_all(broker_url, messages)
    publish_all(broker_url, messages)
    m = service.metrics
    wait_for(lambda: _counter(m.stored) + _counter(m.duplicates) >= 20_000, timeout=120)
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 10_000
    assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 10_000
    assert scalar(clean_db, DOMAIN_ROWS) == 10_000
    assert _counter(m.stored) == 10_000 and _counter(m.duplicates) == 10_000
    assert scalar(clean_db, "SELECT count(*) FROM fcnt_gaps") == 0
    assert scalar(clean_db, "SELECT count(*) FROM dead_letters") == 0


def test_garbage_is_dead_lettered_and_every_good_message_stored(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    fleet = make_fleet(100)
    register(clean_db, fleet.yaml())
    good = make_uplinks(fleet, 9_000)
    bad = make_garbage(fleet, 1_000)
    stream = [(t, p) for t, p in good] + [(t, p) for t, p, _ in bad]
    random.Random(7).shuffle(stream)
    service = run_ingest(clean_db, broker_url)
    publish_all(broker_url, stream)
    kinds = {k: sum(1 for *_, kind in bad if kind == k) for k in {kind for *_, kind in bad}}
    raw_expected = 9_000 + kinds["unknown device"] + kinds["wrong payload size"]
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM dead_letters") >= 1_000, timeout=120)
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= raw_expected, timeout=60)
    wait_for(lambda: _settled(service, len(stream)), timeout=60)
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == raw_expected
    assert scalar(clean_db, DOMAIN_ROWS) == 9_000
    with psycopg.connect(clean_db) as conn:
        stages = dict(conn.execute("SELECT stage, count(*) FROM dead_letters GROUP BY stage").fetchall())
        assert stages == {
            "envelope": kinds["random bytes"] + kinds["truncated JSON"],
            "device": kinds["unknown device"],
            "codec": kinds["wrong payload size"],
        }
        assert conn.execute("SELECT count(*) FROM dead_letters WHERE reason = '' OR payload IS NULL").fetchone() == (0,)
        unknown = conn.execute("SELECT DISTINCT reason FROM dead_letters WHERE stage = 'device'").fetchall()
        assert unknown == [("unknown device",)]
        # every dead letter keeps the message as received
        payloads = {bytes(r[0]) for r in conn.execute("SELECT payload FROM dead_letters").fetchall()}
        assert payloads == {p for _, p, _ in bad}


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


@pytest.mark.slow
@pytest.mark.timeout(360)  # its waits add up to five minutes
def test_database_outage_of_30_seconds_loses_and_doubles_nothing(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    parts = urlsplit(clean_db)
    if not parts.port or parts.hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("the outage is simulated with a TCP proxy to a PostgreSQL on loopback")
    fleet = make_fleet(200)
    register(clean_db, fleet.yaml())
    messages = make_uplinks(fleet, 30_000)
    proxy = TcpProxy("127.0.0.1", parts.port)
    try:
        service = run_ingest(_via(clean_db, proxy.port), broker_url)
        publisher = threading.Thread(target=publish_all, args=(broker_url, messages), kwargs={"rate": 600})
        publisher.start()
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= 3_000, timeout=60)
        proxy.cut()
        cut_at = time.monotonic()
        wait_for(lambda: _counter(service.metrics.spooled) > 0, timeout=20)
        time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
        during = scalar(clean_db, "SELECT count(*) FROM uplinks")
        proxy.restore()
        publisher.join(120)
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= 30_000, timeout=120)
        wait_for(lambda: not service.spool.pending, timeout=30)
        assert during < 30_000
        assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 30_000
        assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 30_000
        assert scalar(clean_db, DOMAIN_ROWS) == 30_000
        assert _counter(service.metrics.spooled) > 0 and _counter(service.metrics.replayed) > 0
        assert service.spool.size == 0 and service.spool.messages == 0
        assert scalar(clean_db, "SELECT count(*) FROM fcnt_gaps") == 0
    finally:
        proxy.close()


@pytest.mark.slow
@pytest.mark.timeout(360)  # its waits add up to five minutes
def test_sigkill_mid_stream_and_restart_stores_every_uplink_once(
    clean_db: str, broker_url: str, tmp_path: Path
) -> None:
    fleet = make_fleet(500)
    register(clean_db, fleet.yaml())
    messages = make_uplinks(fleet, 50_000)
    env = {
        **os.environ,
        "STADTPULS_DATABASE_URL": clean_db,
        "STADTPULS_MQTT_URL": broker_url,
        "STADTPULS_MQTT_CLIENT_ID": "test-kill-9",
        "STADTPULS_SPOOL_DIR": str(tmp_path / "spool"),
        "STADTPULS_METRICS_PORT": "0",
        "STADTPULS_BATCH_SIZE": "2000",
    }
    cmd = [sys.executable, "-m", "stadtpuls.cli", "ingest"]
    log = open(tmp_path / "ingest.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: b"MQTT connected" in (tmp_path / "ingest.log").read_bytes(), timeout=30)
        publisher = threading.Thread(target=publish_all, args=(broker_url, messages), kwargs={"rate": 8000})
        publisher.start()
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= 8_000, timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = scalar(clean_db, "SELECT count(*) FROM uplinks")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        publisher.join(120)
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= 50_000, timeout=180)
        time.sleep(1.0)  # anything still arriving would be a duplicate attempt
        assert killed_at < 50_000
        assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 50_000
        assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 50_000
        assert scalar(clean_db, DOMAIN_ROWS) == 50_000
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        drop_session(broker_url, "test-kill-9")
