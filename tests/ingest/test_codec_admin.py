"""``stadtpuls codecs add | list | test`` and ``stadtpuls decode`` with script codecs, through the command
line's ``main`` (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from ..conftest import Cli

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "tests" / "data" / "scripts"


def test_add_list_and_test_a_script_codec(clean_db: str, tmp_path: Path, run_cli: Cli) -> None:
    add = run_cli(
        clean_db,
        "codecs",
        "add",
        "acme/bin",
        str(SCRIPTS / "acme-bin.js"),
        "--examples",
        str(SCRIPTS / "acme-bin.codec.yaml"),
        "--map",
        str(SCRIPTS / "acme-bin.map.yaml"),
    )
    assert add.returncode == 0, add.stderr
    assert "acme/bin: stored as version 1" in add.stdout
    assert "readings: battery_v <- battery_mv, distance_mm <- distance_mm, temperature_c <- temperature" in add.stdout
    assert "3 passed, 0 failed" in add.stdout
    again = run_cli(clean_db, "codecs", "add", "acme/bin", str(SCRIPTS / "acme-bin.js"))
    assert "unchanged, still version 1" in again.stdout
    with psycopg.connect(clean_db) as conn:
        conn.execute("INSERT INTO devices (dev_eui, codec) VALUES ('00000000000000c1', 'acme/bin')")

    listed = run_cli(clean_db, "codecs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows["acme/bin"]["kind"] == "script" and rows["acme/bin"]["version"] == 1
    assert rows["acme/bin"]["f_ports"] == [1, 9] and rows["acme/bin"]["devices"] == 1
    assert rows["bosch/tps110"]["kind"] == "built-in" and rows["bosch/tps110"]["f_ports"] == [1, 2, 3, 4, 5, 6]
    table = run_cli(clean_db, "codecs", "list").stdout
    assert any(line.split()[:3] == ["acme/bin", "script", "1"] for line in table.splitlines())

    tested = run_cli(clean_db, "codecs", "test", "acme/bin")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "  passed: half full bin" in tested.stdout and "  passed: unknown port" in tested.stdout

    # a new version that decodes the temperature wrongly fails its examples, with the difference shown
    broken = tmp_path / "acme-bin.js"
    broken.write_text((SCRIPTS / "acme-bin.js").read_text().replace("readInt16BE(4) / 10", "readInt16BE(4)"))
    assert "stored as version 2" in run_cli(clean_db, "codecs", "add", "acme/bin", str(broken)).stdout
    tested = run_cli(clean_db, "codecs", "test", "acme/bin")
    assert tested.returncode == 1
    assert "  FAILED: half full bin" in tested.stdout
    assert "      data.temperature: expected 21.5, got 215" in tested.stdout


def test_add_reports_a_script_that_does_not_load(clean_db: str, tmp_path: Path, run_cli: Cli) -> None:
    bad = tmp_path / "bad.js"
    bad.write_text("function decodeUplink(input) { return {data: {}} ")
    result = run_cli(clean_db, "codecs", "add", "acme/bad", str(bad))
    assert result.returncode == 2
    assert "acme/bad: script does not load: SyntaxError" in result.stderr


def test_decode_with_a_stored_script_and_with_a_script_file(clean_db: str, run_cli: Cli) -> None:
    stdin = "".join(
        json.dumps(line) + "\n"
        for line in (
            {"f_port": 1, "bytes_hex": "02bc0e1000d700"},
            {"f_port": 2, "bytes_hex": "01"},
            {"f_port": 1, "bytes_hex": "zz"},
        )
    )
    expected = [
        {"distance_mm": 700, "battery_mv": 3600, "temperature": 21.5, "tilted": False},
        {"error": "unknown fPort 2"},
        {"error": "bad hex: bytes_hex must be an even number of hex digits"},
    ]
    from_file = run_cli(clean_db, "decode", "--codec-file", str(SCRIPTS / "acme-bin.js"), stdin=stdin)
    assert from_file.returncode == 0, from_file.stderr
    assert [json.loads(line) for line in from_file.stdout.splitlines()] == expected
    unknown = run_cli(clean_db, "decode", "--codec", "acme/bin", stdin=stdin)
    assert unknown.returncode == 2 and "unknown codec 'acme/bin'" in unknown.stderr
    assert run_cli(clean_db, "codecs", "add", "acme/bin", str(SCRIPTS / "acme-bin.js")).returncode == 0
    stored = run_cli(clean_db, "decode", "--codec", "acme/bin", stdin=stdin)
    assert stored.returncode == 0, stored.stderr
    assert [json.loads(line) for line in stored.stdout.splitlines()] == expected
