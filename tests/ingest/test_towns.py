"""Two towns on one hub: their devices publish in one MQTT stream to the real ``stadtpuls ingest`` process, and
every reading lands with its device, in its own town (joined through devices and sites), none in the other."""

from __future__ import annotations

import collections
import heapq
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stadtpuls.fleet import apply, parse_text
from stadtpuls.simulators import FaultConfig, SimConfig, Simulation, TruthWriter, build_city, registry_yaml
from stadtpuls.simulators.mqtt_raw import RawPublisher
from stadtpuls.simulators.timebase import HOUR_US, parse_start

from .conftest import drop_session, scalar, wait_for

pytestmark = pytest.mark.timeout(300)

TOWNS = {  # slug -> (seed, site id prefix, centre)
    "nordstadt": (11, "nord-", (51.40, 12.37)),
    "suedstadt": (12, "sued-", (51.28, 12.37)),
}
READING_TABLES = {"bin": "bin_levels", "space": "parking_events", "vehicle": "passenger_counts"}
READING_TABLES["station"] = "environment_readings"


def _town(url: str, slug: str) -> tuple[list[Any], dict[str, Any]]:
    """Register the town under its tenant; its six hours of messages and their ground truth."""
    seed, prefix, center = TOWNS[slug]
    city = build_city("small", seed, "mixed", center, prefix)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s)", (slug, slug.title()))
        report = apply(conn, parse_text(registry_yaml(city), "yaml"), tenant=slug)
    assert not report.errors, report.errors
    truth = TruthWriter(keep=True)
    config = SimConfig(
        city="small",
        seed=seed,
        start_us=parse_start("2025-03-03T06:00"),
        duration_us=6 * HOUR_US,
        faults=FaultConfig.parse("none"),
        site_prefix=prefix,
        center=center,
    )
    messages = list(Simulation(config, truth, city).messages())
    *lines, last = truth.lines
    kinds = collections.Counter(line["kind"] for line in lines)
    return messages, {"uplinks": last["summary"]["uplinks"], "kinds": kinds, "euis": {d.dev_eui for d in city.devices}}


def test_two_towns_in_one_stream_each_reading_lands_in_its_own_town(
    clean_db: str, broker_url: str, tmp_path: Path
) -> None:
    towns = {slug: _town(clean_db, slug) for slug in TOWNS}
    assert not towns["nordstadt"][1]["euis"] & towns["suedstadt"][1]["euis"]
    stream = list(heapq.merge(*(messages for messages, _ in towns.values()), key=lambda m: m.t_us))
    published = {slug: truth["uplinks"] for slug, (_, truth) in towns.items()}
    assert min(published.values()) > 500
    env = {
        **os.environ,
        "STADTPULS_DATABASE_URL": clean_db,
        "STADTPULS_MQTT_URL": broker_url,
        "STADTPULS_MQTT_CLIENT_ID": "test-two-towns",
        "STADTPULS_SPOOL_DIR": str(tmp_path / "spool"),
        "STADTPULS_METRICS_PORT": "0",
    }
    log_path = tmp_path / "ingest.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stadtpuls.cli", "ingest"], env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: b"MQTT connected" in log_path.read_bytes(), timeout=30)
            publisher = RawPublisher(broker_url, "test-two-towns-publisher")
            publisher.publish_many([(m.topic.encode(), m.payload) for m in stream])
            publisher.close()
            total = sum(published.values())
            wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= total, timeout=120)
            readings = " + ".join(f"(SELECT count(*) FROM {t})" for t in READING_TABLES.values())
            wait_for(lambda: scalar(clean_db, f"SELECT {readings}") >= total, timeout=60)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            drop_session(broker_url, "test-two-towns")

    with psycopg.connect(clean_db) as conn:
        per_town = dict(
            conn.execute(
                "SELECT d.tenant, count(*) FROM uplinks u JOIN devices d ON d.dev_eui = u.dev_eui GROUP BY d.tenant"
            ).fetchall()
        )
        assert per_town == published
        assert conn.execute("SELECT count(*) FROM uplinks").fetchone() == (sum(published.values()),)
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        for kind, table in READING_TABLES.items():
            by_site = dict(
                conn.execute(
                    f"SELECT s.tenant, count(*) FROM {table} r JOIN sites s ON s.site_id = r.site_id GROUP BY s.tenant"
                ).fetchall()
            )
            assert by_site == {slug: truth["kinds"][kind] for slug, (_, truth) in towns.items()}, table
            # each reading's device and site are of one town, and the device is the one registered there
            crossed = conn.execute(
                f"SELECT count(*) FROM {table} r JOIN devices d ON d.dev_eui = r.dev_eui"
                f" JOIN sites s ON s.site_id = r.site_id WHERE d.tenant <> s.tenant OR d.site_id <> r.site_id"
            ).fetchone()
            assert crossed == (0,), table
