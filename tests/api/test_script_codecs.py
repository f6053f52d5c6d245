"""End to end: devices decoded only by JavaScript codec scripts, from the broker through the ingest to the API.

A bin sensor, a parking sensor and a door counter of made-up models (``tests/data/scripts``) are stored as script
codecs with readings maps; their uplinks go through Mosquitto (or the embedded broker) into a running ingest and
show up in the pickup plan, the free spaces and the bus occupancy. Bad payloads become dead letters with the
script's message; a script that loops forever costs only its own uplinks; a new version is picked up by the
running ingest at its registry refresh.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
import yaml
from apitest import OP, ApiClient

from stadtpuls.demo.embedded import EmbeddedBroker
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.codec_scripts import add_script
from stadtpuls.ingest.codecs.script import ReadingsMap
from stadtpuls.ingest.service import IngestService
from stadtpuls.settings import Settings
from stadtpuls.simulators.mqtt_raw import publish_all

SCRIPTS = Path(__file__).resolve().parents[1] / "data" / "scripts"
APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
BIN, SPACE_1, SPACE_2, COUNTER, ODD = (f"00000000000000{k:02x}" for k in (0xD1, 0xD2, 0xD3, 0xD4, 0xD5))
FLEET = f"""
sites:
  - {{site_id: bin-1, kind: bin, lat: 51.33, lon: 12.38, depth_mm: 1200, full_mm: 200, threshold_pct: 80,
     volume_l: 1100, waste_type: residual}}
  - {{site_id: lot-1, kind: lot, capacity: 2, lat: 51.34, lon: 12.37}}
  - {{site_id: lot-1-s1, kind: space, parent_id: lot-1}}
  - {{site_id: lot-1-s2, kind: space, parent_id: lot-1}}
  - {{site_id: line-7, kind: line}}
  - {{site_id: bus-701, kind: vehicle, parent_id: line-7, capacity: 80}}
devices:
  - {{dev_eui: "{BIN}", codec: acme/bin, site_id: bin-1}}
  - {{dev_eui: "{SPACE_1}", codec: acme/parking, site_id: lot-1-s1}}
  - {{dev_eui: "{SPACE_2}", codec: acme/parking, site_id: lot-1-s2}}
  - {{dev_eui: "{COUNTER}", codec: acme/counter, site_id: bus-701}}
  - {{dev_eui: "{ODD}", codec: acme/misbehaving}}
"""


def uplink(dev_eui: str, f_port: int, payload: bytes, f_cnt: int, at: datetime) -> tuple[str, bytes]:
    """A ChirpStack v4 uplink event as published by its MQTT integration."""
    event = {
        "deduplicationId": str(uuid.uuid4()),
        "time": at.isoformat(),
        "deviceInfo": {"applicationId": APP, "applicationName": "city", "deviceName": dev_eui, "devEui": dev_eui},
        "devAddr": "00189440",
        "dr": 5,
        "fCnt": f_cnt,
        "fPort": f_port,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": -80, "snr": 7.5}],
        "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7}}},
    }
    return f"application/{APP}/device/{dev_eui}/event/up", orjson.dumps(event)


def store(db_url: str, codec_id: str, script: str, mapping: str | None = None) -> None:
    readings = ReadingsMap.parse(yaml.safe_load((SCRIPTS / mapping).read_text())) if mapping else None
    with psycopg.connect(db_url) as conn:
        add_script(conn, codec_id, (SCRIPTS / script).read_text(), readings=readings)


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def wait_for(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"not reached within {timeout} s (last {value!r})"
        time.sleep(0.1)
    return value


@pytest.fixture
def start_ingest(
    settings: Settings, project_broker: EmbeddedBroker, tmp_path: Path
) -> Iterator[Callable[[], IngestService]]:
    """Starts an ingest service on the test database and broker (after the test registered its devices)."""
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    started: list[IngestService] = []

    def start() -> IngestService:
        service = IngestService(config, database_url=url, mqtt_url=project_broker.url)
        service.start()
        assert service.source.connected.wait(10)
        started.append(service)
        return service

    config = Settings(
        database_url=url,
        mqtt_url=project_broker.url,
        mqtt_client_id=f"test-scripts-{uuid.uuid4().hex[:8]}",
        mqtt_topics=["application/+/device/+/event/up"],
        batch_size=500,
        flush_interval=0.05,
        metrics_port=0,
        spool_dir=tmp_path / "spool",
        registry_refresh=0.5,
        script_time_limit=0.05,
    )
    yield start
    for service in started:
        service.stop()


def test_script_decoded_devices_feed_pickups_parking_and_buses(
    settings: Settings, client: ApiClient, project_broker: EmbeddedBroker, start_ingest: Callable[[], IngestService]
) -> None:
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    store(url, "acme/bin", "acme-bin.js", "acme-bin.map.yaml")
    store(url, "acme/parking", "acme-parking.js", "acme-parking.map.yaml")
    store(url, "acme/counter", "acme-counter.js", "acme-counter.map.yaml")
    store(url, "acme/misbehaving", "misbehaving.js")
    with psycopg.connect(url) as conn:
        report = apply(conn, parse_text(FLEET, "yaml"))
    assert not report.errors, report.errors
    start_ingest()
    now = datetime.now(UTC).replace(microsecond=0)
    at = [now - timedelta(seconds=60 - k) for k in range(20)]
    messages = [
        # bin: 250 mm to the surface of a 1200 mm bin full at 200 mm: 95 %, tilted (a warning)
        uplink(BIN, 1, bytes.fromhex("00fa0e1000d701"), 1, at[0]),
        uplink(BIN, 1, b"\x01", 2, at[1]),  # too short: the script's error
        uplink(SPACE_1, 2, bytes([1, 150]), 1, at[2]),  # occupied
        uplink(SPACE_2, 2, bytes([0, 150]), 1, at[3]),  # free
        uplink(SPACE_2, 2, bytes([7, 150]), 2, at[4]),  # unknown state: the script's error
        uplink(COUNTER, 3, bytes([12, 0, 2, 0]), 1, at[5]),  # 12 in, 2 out
        uplink(COUNTER, 3, bytes([3, 0, 5, 0]), 2, at[6]),  # 3 in, 5 out
        uplink(ODD, 1, bytes([2]), 1, at[7]),  # loops forever
        uplink(ODD, 1, bytes([42]), 2, at[8]),
        uplink(ODD, 1, bytes([1]), 3, at[9]),  # throws
    ]
    publish_all(project_broker.url, messages)
    wait_for(lambda: scalar(url, "SELECT count(*) FROM uplinks") == len(messages))
    wait_for(lambda: scalar(url, "SELECT count(*) FROM dead_letters") >= 4, timeout=20)

    with psycopg.connect(url) as conn:
        dead = dict(conn.execute("SELECT reason, stage FROM dead_letters").fetchall())
    assert dead == {
        "acme/bin: expected 7 bytes, got 1": "codec",
        "acme/misbehaving: cannot decode 1 bytes": "codec",
        "acme/misbehaving: time limit exceeded (0.05 s CPU)": "codec",
        "acme/parking: unknown state 7": "codec",
    }
    with psycopg.connect(url) as conn:
        level = conn.execute("SELECT distance_mm, fill_pct, battery_v, temperature_c FROM bin_levels").fetchall()
        kept = conn.execute(
            "SELECT dev_eui, codec_id, codec_version, data, warnings FROM uplink_decoded ORDER BY time"
        ).fetchall()
    assert level == [(250.0, 95.0, pytest.approx(3.6), pytest.approx(21.5))]
    assert len(kept) == 6 and kept[0][:3] == (BIN, "acme/bin", 1)
    assert kept[0][4] == ["sensor tilted: the distance may be wrong"]
    assert kept[-1][3] == {"value": 42} and kept[-1][4] is None  # no map: the object is kept, nothing else

    pickups = client.get("/api/v1/waste/pickups", headers=OP).json()
    assert [(s["site_id"], s["reason"]) for s in pickups["data"]] == [("bin-1", "over_threshold")]
    (lot,) = client.get("/api/v1/parking/lots").json()["data"]
    assert (lot["lot_id"], lot["free"], lot["occupied"]) == ("lot-1", 1, 1)
    (bus,) = client.get("/api/v1/buses/vehicles").json()["data"]
    assert (bus["vehicle_id"], bus["passengers"], bus["source"]) == ("bus-701", 8, "door_counter")

    # a new version, picked up by the running ingest at its registry refresh: battery now in volts * 2
    source = (SCRIPTS / "acme-bin.js").read_text().replace("readUInt16BE(2),", "readUInt16BE(2) * 2,")
    with psycopg.connect(url) as conn:
        assert add_script(conn, "acme/bin", source)[0].version == 2
    time.sleep(1.0)  # two refresh intervals
    publish_all(project_broker.url, [uplink(BIN, 1, bytes.fromhex("01f40e1000d700"), 3, at[10])])
    wait_for(lambda: scalar(url, "SELECT count(*) FROM bin_levels") == 2)
    assert scalar(url, "SELECT battery_v FROM bin_levels ORDER BY time DESC LIMIT 1") == pytest.approx(7.2)
    assert scalar(url, "SELECT codec_version FROM uplink_decoded ORDER BY time DESC LIMIT 1") == 2
