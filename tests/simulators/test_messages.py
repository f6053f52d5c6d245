"""The message builders write the real network-server formats, and ``parse_batch`` reads back what they were given."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators.messages import (
    chirpstack_join,
    chirpstack_topic,
    chirpstack_uplink,
    rfc3339_chirpstack,
    rfc3339_tts,
    tts_join,
    tts_topic,
    tts_uplink,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "lns-formats" / "samples"
T0 = datetime(2026, 3, 2, 8, 15, 30, 123456, tzinfo=UTC)
HUB_TS = (T0 + timedelta(seconds=2)).timestamp()
APP_UUID = "17c82e96-be03-4f38-aef3-f83d48582d97"


def sample(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads((SAMPLES / name).read_bytes())
    return obj


def parse(*messages: dict[str, Any], **kwargs: Any) -> Any:
    return parse_batch(["t"] * len(messages), [orjson.dumps(m) for m in messages], HUB_TS, **kwargs)


def naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def test_tts_uplink_round_trip() -> None:
    msg = tts_uplink(
        device_id="bin-0042",
        app_id="city-waste",
        dev_eui="A84041000181C6A1",
        received_at=T0,
        f_port=2,
        f_cnt=1234,
        payload=b"\x0c\xe4\x01\x2c",
        dr=3,
        frequency=867_300_000,
        gateways=[("eui-0016c001f153a14c", -97.0, 4.25), ("rathaus", -88.0, 8.0)],
        decoded={"distance": 1234},
        session_key_id="AXBSH1Pk6Z0G166RlH16CQ==",
    )
    batch = parse(msg)
    row = batch.row(0)
    assert (row["lns"], row["dev_eui"], row["lns_device_id"], row["app_id"]) == (
        "tts",
        "a84041000181c6a1",
        "bin-0042",
        "city-waste",
    )
    assert (row["f_cnt"], row["f_cnt_present"], row["f_port"], row["payload"]) == (1234, True, 2, b"\x0c\xe4\x01\x2c")
    assert row["time"] == naive(T0)
    assert (row["rssi"], row["snr"], row["gateway_id"], row["gateways"]) == (-88.0, 8.0, "rathaus", 2)
    assert (row["dr"], row["sf"], row["bandwidth"], row["frequency"]) == (3, 9, 125_000, 867_300_000)
    assert row["decoded"] == {"distance": 1234}
    assert row["session"] == "AXBSH1Pk6Z0G166RlH16CQ=="
    assert row["simulated"] is False


def test_tts_uplink_omits_zero_values_as_the_server_does() -> None:
    msg = tts_uplink(device_id="p-7", app_id="parking", received_at=T0, f_port=1, f_cnt=0, payload=b"\x01")
    up = msg["uplink_message"]
    assert "f_cnt" not in up and "dev_eui" not in msg["end_device_ids"]
    assert isinstance(up["settings"]["frequency"], str)
    row = parse(msg).row(0)
    assert (row["f_cnt"], row["f_cnt_present"], row["dev_eui"], row["lns_device_id"]) == (0, False, "", "p-7")


def test_tts_uplink_keys_are_those_of_real_messages() -> None:
    seen_top: set[str] = set()
    seen_up: set[str] = set()
    seen_rx: set[str] = set()
    for name in (
        "tts-v3-uplink.json",
        "tts-v3-uplink-dataformats.json",
        "tts-v3-uplink-mqtt-doc.json",
        "tts-v3-uplink-minimal.json",
        "tts-v3-uplink-simulated.json",
    ):
        real = sample(name)
        seen_top |= set(real)
        seen_up |= set(real["uplink_message"])
        for entry in real["uplink_message"].get("rx_metadata", []):
            seen_rx |= set(entry)
    msg = tts_uplink(
        device_id="d",
        app_id="a",
        dev_eui="0004A30B001C0530",
        received_at=T0,
        f_port=1,
        f_cnt=3,
        payload=b"\x01",
        decoded={"x": 1},
        confirmed=True,
    )
    assert set(msg) <= seen_top
    assert set(msg["uplink_message"]) <= seen_up
    assert set(msg["uplink_message"]["rx_metadata"][0]) <= seen_rx
    assert re.fullmatch(r"as:up:[0-9A-HJKMNP-TV-Z]{26}", msg["correlation_ids"][0])


def test_chirpstack_uplink_has_exactly_the_key_layout_of_current_chirpstack() -> None:
    real = sample("chirpstack-v4-up-full.json")
    msg = chirpstack_uplink(
        dev_eui="0101010101010101",
        application_id=APP_UUID,
        time=T0,
        f_port=1,
        f_cnt=0,
        payload=b"\xaa",
        decoded={"temp": 22.5},
    )
    assert list(msg) == list(real)
    assert list(msg["deviceInfo"]) == list(real["deviceInfo"])
    assert list(msg["rxInfo"][0]) == list(real["rxInfo"][0])
    assert list(msg["txInfo"]["modulation"]["lora"]) == list(real["txInfo"]["modulation"]["lora"])


def test_chirpstack_uplink_round_trip_keeps_the_deduplication_id() -> None:
    msg = chirpstack_uplink(
        dev_eui="A84041000181C6A1",
        application_id=APP_UUID,
        time=T0,
        f_port=5,
        f_cnt=77,
        payload=b"\x01\x02\x03",
        dr=0,
        gateways=[("0016c001f153a14c", -120.4, -7.25)],
        decoded={"occupied": 1.0},
    )
    row = parse(msg).row(0)
    assert (row["lns"], row["dev_eui"], row["lns_device_id"], row["app_id"]) == (
        "chirpstack-v4",
        "a84041000181c6a1",
        None,
        APP_UUID,
    )
    assert (row["f_cnt"], row["f_port"], row["payload"], row["time"]) == (77, 5, b"\x01\x02\x03", naive(T0))
    assert (row["rssi"], row["snr"], row["gateways"], row["gateway_id"]) == (-120.0, -7.25, 1, "0016c001f153a14c")
    assert (row["dr"], row["sf"], row["bandwidth"], row["frequency"]) == (0, 12, 125_000, 868_100_000)
    assert row["dedup_key"] == uuid.UUID(msg["deduplicationId"])
    assert row["decoded"] == {"occupied": 1.0}


def test_builders_are_deterministic_and_key_distinct_uplinks_apart() -> None:
    def tts(f_cnt: int) -> dict[str, Any]:
        return tts_uplink(
            device_id="d", app_id="a", received_at=T0 + timedelta(seconds=f_cnt), f_port=1, f_cnt=f_cnt, payload=b"\x01"
        )

    def cs(f_cnt: int) -> dict[str, Any]:
        return chirpstack_uplink(
            dev_eui="0101010101010101",
            application_id=APP_UUID,
            time=T0 + timedelta(seconds=f_cnt),
            f_port=1,
            f_cnt=f_cnt,
            payload=b"\x01",
        )

    assert orjson.dumps(tts(1)) == orjson.dumps(tts(1))
    assert orjson.dumps(cs(1)) == orjson.dumps(cs(1))
    batch = parse(tts(1), tts(1), tts(2), cs(1), cs(1), cs(2))
    keys = [bytes(k) for k in batch.dedup_key]
    assert keys[0] == keys[1] and keys[3] == keys[4]
    assert len(set(keys)) == 4


def test_simulated_tts_uplink_is_shaped_like_the_console_and_read_only_on_request() -> None:
    msg = tts_uplink(device_id="d", app_id="a", received_at=T0, f_port=1, f_cnt=5, payload=b"\x01", simulated=True)
    up = msg["uplink_message"]
    assert msg["simulated"] is True and "f_cnt" not in up and "received_at" not in up
    assert "session_key_id" not in up
    assert [e.kind for e in parse(msg).ignored] == ["simulated"]
    row = parse(msg, store_simulated=True).row(0)
    assert row["simulated"] is True
    assert row["time"] == naive(T0 + timedelta(milliseconds=15))  # the Application Server's time


def test_join_builders_round_trip() -> None:
    tj = tts_join(
        device_id="bin-1",
        app_id="city",
        received_at=T0,
        session_key_id="AXBSH1Pk6Z0G166RlH16CQ==",
        dev_eui="A84041000181C6A1",
        dev_addr="260B1234",
    )
    cj = chirpstack_join(dev_eui="A84041000181C6A1", application_id=APP_UUID, time=T0, dev_addr="260b1234")
    assert set(tj) == set(sample("tts-v3-join.json"))
    assert set(tj["join_accept"]) <= set(sample("tts-v3-join.json")["join_accept"])
    assert set(cj) <= set(sample("chirpstack-v4-join.json")) | {"regionConfigId"}
    batch = parse(tj, cj)
    assert len(batch) == 0 and not batch.rejects
    assert [(j.index, j.dev_eui, j.lns, j.time, j.session) for j in batch.joins] == [
        (0, "a84041000181c6a1", "tts", T0, "AXBSH1Pk6Z0G166RlH16CQ=="),
        (1, "a84041000181c6a1", "chirpstack-v4", T0, "260b1234"),
    ]
    assert batch.joins[0].lns_device_id == "bin-1"


@pytest.mark.parametrize(
    ("when", "tts", "chirpstack"),
    [
        (datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC), "2026-03-02T08:00:00.000000000Z", "2026-03-02T08:00:00+00:00"),
        (
            datetime(2026, 3, 2, 8, 0, 0, 250000, tzinfo=UTC),
            "2026-03-02T08:00:00.250000000Z",
            "2026-03-02T08:00:00.250+00:00",
        ),
        (
            datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC) + timedelta(hours=-1),
            "2026-03-02T08:00:00.123456000Z",
            "2026-03-02T08:00:00.123456+00:00",
        ),
    ],
)
def test_timestamp_forms(when: datetime, tts: str, chirpstack: str) -> None:
    assert rfc3339_tts(when) == tts
    assert rfc3339_chirpstack(when) == chirpstack


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339_tts(datetime(2026, 3, 2))


def test_topics() -> None:
    assert tts_topic("city", "bin-1") == "v3/city/devices/bin-1/up"
    assert tts_topic("city", "bin-1", "join", tenant="ttn") == "v3/city@ttn/devices/bin-1/join"
    assert chirpstack_topic(APP_UUID, "A84041000181C6A1") == (
        f"application/{APP_UUID}/device/a84041000181c6a1/event/up"
    )
