"""Uplinks without a time of their own, through the broker and the ingest service into the database.

ChirpStack v3 ``json_v3`` uplinks whose gateways report no time and TTS uplinks without ``received_at`` are timed by
the hub's clock. Every distinct one must give its reading, however the messages are batched; a redelivered one
(the same message again, with no id to tell it by) must be stored once.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.envelopes.hub_clock import hub_clock_offsets
from stadtpuls.ingest.service import IngestService
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink, tts_topic, tts_uplink
from stadtpuls.simulators.mqtt_raw import publish_all

from .conftest import register, scalar, wait_for

STATION, SPACE, BIN = "5100000000000001", "5100000000000002", "5100000000000003"
FLEET = f"""
sites:
  - {{site_id: lot-9, kind: lot, capacity: 4}}
  - {{site_id: space-9, kind: space, parent_id: lot-9}}
  - {{site_id: station-9, kind: station}}
  - {{site_id: bin-9, kind: bin, depth_mm: 1200, full_mm: 200}}
devices:
  - {{dev_eui: "{STATION}", codec: elsys/ers, site_id: station-9}}
  - {{dev_eui: "{SPACE}", codec: nwave/nps405, site_id: space-9, lns_device_id: space-9}}
  - {{dev_eui: "{BIN}", codec: milesight-iot/em310-udl, site_id: bin-9}}
"""
BIN_APP = "00000000-0000-0000-0000-0000000000b1"
Message = tuple[str, bytes]


def _climate(temperature: float) -> bytes:
    buf, _ = get("elsys/ers").encode(5, {"temperature": np.array([temperature]), "humidity": np.array([40])})
    return buf.tobytes()


def v3_uplink(f_cnt: int, payload: bytes, *, uplink_id: str | None = None, rssi: int = -80) -> Message:
    """A ChirpStack v3 ``json_v3`` uplink of the station: no ``publishedAt``, a gateway that reports no time."""
    gateway: dict[str, object] = {"gatewayID": "0303030303030303", "name": "rathaus", "rssi": rssi, "loRaSNR": 7.5}
    if uplink_id is not None:
        gateway["uplinkID"] = uplink_id
    msg = {
        "applicationID": "7",
        "applicationName": "klima",
        "deviceName": "station-9",
        "devEUI": STATION,
        "rxInfo": [gateway],
        "txInfo": {"frequency": 868100000, "dr": 5},
        "adr": True,
        "fCnt": f_cnt,
        "fPort": 5,
        "data": base64.b64encode(payload).decode(),
    }
    return f"application/7/device/{STATION}/event/up", orjson.dumps(msg)


def tts_without_received_at(f_cnt: int, occupied: bool) -> Message:
    msg = tts_uplink(
        device_id="space-9",
        app_id="city",
        dev_eui=SPACE,
        received_at=datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
        f_port=1,
        payload=b"\x01" if occupied else b"\x00",
        f_cnt=f_cnt,
        session_key_id="AAECAwQFBgcICQoLDA0ODw==",
    )
    del msg["received_at"], msg["uplink_message"]["received_at"]
    return tts_topic("city", "space-9"), orjson.dumps(msg)


def _hub_timed_stream() -> list[Message]:
    """Five station uplinks (fCnt 500-504, gateway uplink ids, no time) and three parking uplinks (f_cnt 600-602)."""
    station = [v3_uplink(f, _climate(20 + f - 500), uplink_id=str(uuid.uuid4())) for f in range(500, 505)]
    space = [tts_without_received_at(f, f % 2 == 0) for f in range(600, 603)]
    return station + space


def _batches(service: IngestService) -> tuple[int, int]:
    """(batches handled, messages in them) from the service's histogram of batch sizes."""
    samples = {s.name: s.value for s in service.metrics.batch_size.collect()[0].samples}
    return int(samples["stadtpuls_ingest_batch_messages_count"]), int(samples["stadtpuls_ingest_batch_messages_sum"])


def _counter(c: object) -> float:
    return float(c._value.get())  # type: ignore[attr-defined]


def _counts(url: str) -> tuple[int, int, int]:
    return (
        scalar(url, "SELECT count(*) FROM uplinks"),
        scalar(url, "SELECT count(*) FROM environment_readings WHERE dev_eui = %s", (STATION,)),
        scalar(url, "SELECT count(*) FROM parking_events WHERE dev_eui = %s", (SPACE,)),
    )


@pytest.mark.parametrize(("batch_size", "batches"), [(8, 1), (1, 8)], ids=["in-one-batch", "one-batch-each"])
def test_every_uplink_timed_by_the_hub_gives_its_reading(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService], batch_size: int, batches: int
) -> None:
    register(clean_db, FLEET)
    stream = _hub_timed_stream()
    service = run_ingest(clean_db, broker_url, batch_size=batch_size, flush_interval=5.0)
    publish_all(broker_url, stream)  # back to back
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") >= len(stream), timeout=30)
    wait_for(lambda: _batches(service)[1] >= len(stream), timeout=10)
    assert _batches(service) == (batches, len(stream))
    assert _counts(clean_db) == (8, 5, 3)
    temperatures = scalar(
        clean_db,
        "SELECT array_agg(temperature_c ORDER BY time) FROM environment_readings WHERE dev_eui = %s",
        (STATION,),
    )
    assert temperatures == [20.0, 21.0, 22.0, 23.0, 24.0]  # in the order they arrived
    states = scalar(
        clean_db, "SELECT array_agg(occupied ORDER BY time) FROM parking_events WHERE dev_eui = %s", (SPACE,)
    )
    assert states == [True, False, True]
    # each reading is at its raw uplink's time
    orphans = scalar(
        clean_db,
        "SELECT count(*) FROM (SELECT dev_eui, time FROM environment_readings UNION ALL"
        " SELECT dev_eui, time FROM parking_events) r WHERE NOT EXISTS"
        " (SELECT 1 FROM uplinks u WHERE u.dev_eui = r.dev_eui AND u.time = r.time)",
    )
    assert orphans == 0


def test_a_v3_uplink_without_any_id_redelivered_is_stored_once_and_a_reset_counter_still_counts(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    register(clean_db, FLEET)
    service = run_ingest(clean_db, broker_url)
    before_reset = [v3_uplink(f, _climate(18.5), rssi=-80 - f) for f in (1, 2, 3)]
    publish_all(broker_url, before_reset)
    wait_for(lambda: _counts(clean_db) == (3, 3, 0), timeout=30)
    time.sleep(1.5)
    publish_all(broker_url, before_reset[2:])  # the broker delivers fCnt 3 again, 1.5 s later
    # the device resets: counters 1 and 2 again, the same payloads, received anew by the same gateway
    after_reset = [v3_uplink(f, _climate(18.5), rssi=-90 - f) for f in (1, 2)]
    publish_all(broker_url, after_reset)
    wait_for(lambda: _batches(service)[1] >= 6, timeout=30)  # every message written
    assert _counts(clean_db) == (5, 5, 0)
    assert _counter(service.metrics.duplicates) == 1
    f_cnts = scalar(clean_db, "SELECT array_agg(f_cnt ORDER BY time) FROM uplinks WHERE dev_eui = %s", (STATION,))
    assert f_cnts == [1, 2, 3, 1, 2]


def _bin_uplink(distance_mm: int) -> Message:
    """A ChirpStack v4 uplink of the bin, with its network server's time."""
    payload, _ = get("milesight-iot/em310-udl").encode(
        85, {"battery": np.array([90]), "distance": np.array([distance_mm])}
    )
    msg = chirpstack_uplink(
        dev_eui=BIN, application_id=BIN_APP, time=datetime.now(UTC), f_port=85, payload=payload.tobytes(), f_cnt=1
    )
    return chirpstack_topic(BIN_APP, BIN), orjson.dumps(msg)


@pytest.fixture
def fresh_db(migrated_database: Callable[[], str]) -> str:
    return migrated_database()


def test_a_batch_split_around_a_refused_row_keeps_every_reading_timed_by_the_hub(
    fresh_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    register(fresh_db, FLEET)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE bin_levels ADD CONSTRAINT plausible CHECK (distance_mm < 1180)")
    station = [v3_uplink(f, _climate(20 + f - 500), uplink_id=str(uuid.uuid4())) for f in range(500, 504)]
    stream = station[:2] + [_bin_uplink(1190)] + station[2:]  # halves: 500, 501 | bin, 502, 503
    run_ingest(fresh_db, broker_url, batch_size=len(stream), flush_interval=5.0)  # one batch
    publish_all(broker_url, stream)
    wait_for(lambda: scalar(fresh_db, "SELECT count(*) FROM dead_letters") >= 1, timeout=30)
    wait_for(lambda: scalar(fresh_db, "SELECT count(*) FROM uplinks") >= 4, timeout=10)
    assert scalar(fresh_db, "SELECT stage FROM dead_letters") == "database"  # the batch was split to find it
    temperatures = scalar(
        fresh_db,
        "SELECT array_agg(temperature_c ORDER BY time) FROM environment_readings WHERE dev_eui = %s",
        (STATION,),
    )
    assert temperatures == [20.0, 21.0, 22.0, 23.0]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), max_size=40))
def test_offsets_are_the_rank_of_each_uplinks_first_copy_among_its_devices(rows: list[tuple[int, int]]) -> None:
    """Rows are (device, uplink of that device); devices 3-5 are TTS devices without DevEUI."""
    dev_eui = np.array([f"{d:016x}".encode() if d < 3 else b"" for d, _ in rows], dtype="S16")
    device_id = np.array([f"dev-{d}" for d, _ in rows] or [None], dtype=object)[: len(rows)]
    keys = np.array(
        [list(hashlib.blake2b(f"{d}/{u}".encode(), digest_size=16).digest()) for d, u in rows], dtype=np.uint8
    ).reshape(-1, 16)
    expected, first_seen, per_device = [], {}, {}
    for row in rows:
        if row not in first_seen:
            first_seen[row] = per_device.get(row[0], 0)
            per_device[row[0]] = first_seen[row] + 1
        expected.append(first_seen[row])
    assert hub_clock_offsets(dev_eui, device_id, keys).tolist() == expected
