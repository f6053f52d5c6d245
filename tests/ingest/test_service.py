"""End to end: messages published to the project broker end up in the database through an in-process service."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from stadtpuls.demo.embedded import free_port
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.ingest.envelopes.keys import stored_keys
from stadtpuls.ingest.service import IngestService
from stadtpuls.simulators.mqtt_raw import publish_all

from .conftest import register, scalar, wait_for

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "lns-formats" / "samples"

FLEET = """
sites:
  - {site_id: lot-1, kind: lot, name: Markt, capacity: 2}
  - {site_id: space-1, kind: space, parent_id: lot-1}
  - {site_id: space-2, kind: space, parent_id: lot-1}
  - {site_id: station-1, kind: station, name: Rathaus}
  - {site_id: bin-1, kind: bin, depth_mm: 1200, full_mm: 200}
devices:
  - {dev_eui: "0101010101010101", codec: nwave/nps405, site_id: space-1}
  - {dev_eui: "70b3d52dd600035a", codec: bosch/tps110, site_id: space-2, lns_device_id: eui-70b3d52dd600035a}
  - {dev_eui: "00000000000000f0", codec: elsys/ers, site_id: station-1, lns_device_id: foo-device}
  - {dev_eui: "4200000000000000", codec: opensource/esp32-paxcounter, lns_device_id: dev1}
  - {dev_eui: "0102030405060708", codec: milesight-iot/em310-udl, site_id: bin-1}
"""


def _topic(name: str, body: bytes) -> str:
    """The topic the network server publishes the sample on: the application and device its body names."""
    tts = name.startswith("tts")
    env = parse_batch(["v3/x/devices/x/up" if tts else "application/x/device/x/event/up"], [body], time.time())
    if not len(env):  # not an uplink: any topic of the server's layout
        return "v3/app1@ttn/devices/dev/up" if tts else "application/app1/device/0101010101010101/event/up"
    if tts:
        return f"v3/{env.app_id[0]}@ttn/devices/{env.lns_device_id[0]}/up"
    return f"application/{env.app_id[0]}/device/{env.dev_eui[0].decode()}/event/up"


def test_every_sample_message_stored_once_with_its_domain_rows(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    register(clean_db, FLEET)
    files = sorted(SAMPLES.glob("*.json"))
    messages = [(_topic(f.name, f.read_bytes()), f.read_bytes()) for f in files]
    expected = parse_batch([t for t, _ in messages], [p for _, p in messages], time.time())
    keys = set(stored_keys(expected.dedup_key).tolist())
    assert len(keys) >= 5  # the uplink samples of both servers (two ChirpStack v4 samples are one uplink)

    service = run_ingest(clean_db, broker_url, mqtt_topics=["v3/+/devices/+/up", "application/#"])
    publish_all(broker_url, messages)
    wait_for(lambda: service.metrics.received._value.get() >= len(messages))
    wait_for(lambda: service.metrics.batches._value.get() >= 1 and not len(service.inbox))
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") == len(keys))
    service.stop()

    with psycopg.connect(clean_db) as conn:
        rows = conn.execute("SELECT dedup_key, count(*) FROM uplinks GROUP BY dedup_key").fetchall()
        assert {r[0] for r in rows} == keys
        assert all(r[1] == 1 for r in rows)
        lns = dict(conn.execute("SELECT lns, count(*) FROM uplinks GROUP BY lns").fetchall())
        assert lns["tts"] >= 3 and lns["chirpstack-v4"] == 1 and lns["chirpstack-v3"] == 1
        # the TTS sample without a DevEUI is stored under the registered device of its TTS device id
        assert scalar(clean_db, "SELECT count(*) FROM uplinks WHERE dev_eui = '00000000000000f0'") == 1
        parking = conn.execute(
            "SELECT dev_eui, site_id, lot_id, occupied FROM parking_events ORDER BY dev_eui"
        ).fetchall()
        assert parking == [
            ("0101010101010101", "space-1", "lot-1", False),
            ("70b3d52dd600035a", "space-2", "lot-1", True),
        ]
        env = conn.execute("SELECT dev_eui, site_id, temperature_c FROM environment_readings").fetchall()
        assert env == [("00000000000000f0", "station-1", 51.5)]
        # the EM310 sample frame carries no distance: no bin level, raw uplink kept
        assert conn.execute("SELECT count(*) FROM bin_levels").fetchone() == (0,)
        dead = conn.execute("SELECT stage, reason, topic FROM dead_letters ORDER BY id").fetchall()
        assert [d[0] for d in dead] == ["envelope"] * len(expected.rejects)
        assert all("base64" in d[1] for d in dead)
        joins = conn.execute("SELECT dev_eui FROM device_state WHERE last_join IS NOT NULL ORDER BY 1").fetchall()
        assert ("0101010101010101",) in joins and ("00000000000000f0",) in joins


def test_unreadable_envelopes_are_dead_letters_with_plain_reasons_and_the_server_of_their_topic(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    messages = [
        ("v3/parking@ttn/devices/space-7/up", b"[1, 2]"),
        ("application/0b0e63a1-5f4c-4f5e-9c4e-2b7b4f1a0c11/device/0101010101010101/event/up", b"null"),
        ("application/7/device/0101010101010101/rx", b'"up"'),
        ("city/sensors/space-7", b"{}"),
    ]
    service = run_ingest(clean_db, broker_url, mqtt_topics=["v3/+/devices/+/up", "application/#", "city/#"])
    publish_all(broker_url, messages)
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM dead_letters") == len(messages))
    service.stop()
    with psycopg.connect(clean_db) as conn:
        rows = dict(
            (topic, (stage, reason, lns))
            for topic, stage, reason, lns in conn.execute("SELECT topic, stage, reason, lns FROM dead_letters")
        )
    assert rows == {
        messages[0][0]: ("envelope", "envelope is an array, expected a JSON object", "tts"),
        messages[1][0]: ("envelope", "envelope is null, expected a JSON object", "chirpstack-v4"),
        messages[2][0]: ("envelope", "envelope is a string, expected a JSON object", "chirpstack-v3"),
        messages[3][0]: (
            "envelope",
            "unknown message format: no end_device_ids, deviceInfo or devEUI (keys: )",
            None,
        ),
    }


PASSWORD = "s3cret-Pw"


def _problem_logs(records: list[logging.LogRecord]) -> list[str]:
    return [
        f"{r.getMessage()} | {getattr(r, 'error', '')} | {getattr(r, 'detail', '')} | {getattr(r, 'database', '')}"
        for r in records
        if r.name == "stadtpuls.ingest.worker"
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("closed-port", "Connection refused"),
        ("missing-database", 'database "stadtpuls_no_such_db" does not exist'),
        ("unknown-host", "stadtpuls-no-such-host.invalid"),
        ("unmigrated", 'relation "devices" does not exist'),
    ],
)
def test_database_problem_is_logged_with_the_drivers_message_and_messages_are_spooled(
    target: str,
    expected: str,
    pg_server_url: str,
    new_database: Callable[[], str],
    broker_url: str,
    run_ingest: Callable[..., IngestService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = urlsplit(pg_server_url)
    netloc = f"{server.username or 'postgres'}:{PASSWORD}@{server.hostname}:{server.port or 5432}"
    url = {
        "closed-port": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/stadtpuls",
        "missing-database": f"postgresql://{netloc}/stadtpuls_no_such_db",
        "unknown-host": f"postgresql://postgres:{PASSWORD}@stadtpuls-no-such-host.invalid:5432/stadtpuls",
        "unmigrated": urlunsplit(urlsplit(new_database())._replace(netloc=netloc)),
    }[target]
    caplog.set_level(logging.INFO, logger="stadtpuls.ingest")
    service = run_ingest(url, broker_url, mqtt_topics=["v3/+/devices/+/up"])
    publish_all(broker_url, [("v3/parking@ttn/devices/space-7/up", (SAMPLES / "tts-v3-uplink.json").read_bytes())])
    wait_for(lambda: service.metrics.spooled._value.get() >= 1)  # noqa: SLF001 - counter value
    service.stop()
    lines = _problem_logs(caplog.records)
    assert all(PASSWORD not in line for line in lines), lines
    assert any(expected in line for line in lines), lines
    spooling = [line for line in lines if ": spooling" in line]
    assert spooling and expected in spooling[0], lines
    assert ":***@" in spooling[0]  # the database it was about, password masked
    migrate_hint = [line for line in lines if "stadtpuls migrate" in line]
    assert bool(migrate_hint) == (target == "unmigrated"), lines
