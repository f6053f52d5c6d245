"""``stadtpuls redecode``: stored raw uplinks decoded again with a codec's current version, readings replaced."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.codec_scripts import add_script
from stadtpuls.ingest.codecs.script import ReadingsMap
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.ingest.redecode import redecode

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "tests" / "data" / "scripts"
BIN_A, BIN_B = "00000000000000e1", "00000000000000e2"
FLEET = f"""
sites:
  - {{site_id: bin-a, kind: bin, depth_mm: 1200, full_mm: 200}}
  - {{site_id: bin-b, kind: bin, depth_mm: 1200, full_mm: 200}}
devices:
  - {{dev_eui: "{BIN_A}", codec: acme/bin, site_id: bin-a}}
  - {{dev_eui: "{BIN_B}", codec: acme/bin, site_id: bin-b}}
"""
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def setup_bins(url: str) -> None:
    readings = ReadingsMap.parse(yaml.safe_load((SCRIPTS / "acme-bin.map.yaml").read_text()))
    with psycopg.connect(url) as conn:
        add_script(conn, "acme/bin", (SCRIPTS / "acme-bin.js").read_text(), readings=readings)
        assert not apply(conn, parse_text(FLEET, "yaml")).errors
        rows = [
            (T0, BIN_A, bytes.fromhex("02bc0e1000d700")),  # 700 mm: 50 %
            (T0 + timedelta(hours=1), BIN_A, bytes.fromhex("01f40e1000d700")),  # 500 mm: 70 %
            (T0 + timedelta(hours=2), BIN_A, b"\x01"),  # rejected
            (T0 + timedelta(hours=1), BIN_B, bytes.fromhex("00c80e1000d700")),  # 200 mm: 100 %
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, payload, lns)"
                " VALUES (%s, %s, %s, 1, 1, %s, 'chirpstack-v4')",
                [(t, stored_key(uuid.uuid4().bytes), eui, payload) for t, eui, payload in rows],
            )


def levels(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT dev_eui, time, fill_pct, battery_v FROM bin_levels ORDER BY dev_eui, time"
        ).fetchall()


def test_redecode_replaces_readings_with_the_current_version_and_is_idempotent(clean_db: str) -> None:
    setup_bins(clean_db)
    first = redecode(clean_db, "acme/bin", batch_size=2)
    assert first.uplinks == 4 and first.rejected == 1
    assert first.reasons == {"acme/bin: expected 7 bytes, got 1": 1}
    assert first.readings == {"bin_levels": 3, "uplink_decoded": 3}
    rows = levels(clean_db)
    assert [(r[0], r[2]) for r in rows] == [(BIN_A, 50.0), (BIN_A, 70.0), (BIN_B, 100.0)]
    assert redecode(clean_db, "acme/bin").readings == first.readings
    assert levels(clean_db) == rows  # the same rows again, not doubled

    source = (SCRIPTS / "acme-bin.js").read_text().replace("readUInt16BE(2),", "readUInt16BE(2) * 2,")
    with psycopg.connect(clean_db) as conn:
        add_script(conn, "acme/bin", source)
    only_a = redecode(clean_db, "acme/bin", device=BIN_A, since=T0 + timedelta(minutes=30))
    assert only_a.uplinks == 2
    assert [(r[0], r[3]) for r in levels(clean_db)] == [
        (BIN_A, pytest.approx(3.6)),  # before --since: untouched
        (BIN_A, pytest.approx(7.2)),
        (BIN_B, pytest.approx(3.6)),  # another device: untouched
    ]
    with psycopg.connect(clean_db) as conn:
        versions = conn.execute("SELECT dev_eui, codec_version FROM uplink_decoded ORDER BY dev_eui, time").fetchall()
    assert versions == [(BIN_A, 1), (BIN_A, 2), (BIN_B, 1)]


def test_redecode_command_prints_a_summary(clean_db: str) -> None:
    setup_bins(clean_db)
    env = {**os.environ, "STADTPULS_DATABASE_URL": clean_db}
    result = subprocess.run(
        [sys.executable, "-m", "stadtpuls.cli", "redecode", "--codec", "acme/bin", "--since", "2026-05-01T08:30:00Z"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "acme/bin: 3 uplinks decoded; rows written: bin_levels 2, uplink_decoded 2; rejected 1",
        "  1 x acme/bin: expected 7 bytes, got 1",
    ]
    assert "3/3" in result.stderr  # the progress bar
