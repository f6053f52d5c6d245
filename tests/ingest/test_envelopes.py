"""Every network-server sample of ``tests/data/lns-formats/samples`` through ``parse_batch``, unchanged, plus the rules
the samples do not cover (reading-time fallbacks, dedup keys, simulated and MAC-only uplinks, side events, rejects).

The samples are read at run time from ``tests/data/lns-formats/samples``.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from stadtpuls.ingest.envelopes import EnvelopeBatch, Ignored, Join, LogEvent, Status, parse_batch
from stadtpuls.ingest.envelopes.keys import key_of_stored, stored_key, stored_keys

HUB = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
HUB_TS = HUB.timestamp()


def shared_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "data"


SAMPLES = shared_dir() / "lns-formats" / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sample_obj(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(sample(name))
    return obj


def parse_one(payload: bytes | dict[str, Any], topic: str = "", **kwargs: Any) -> EnvelopeBatch:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_batch([topic], [raw], HUB_TS, **kwargs)


def only_row(batch: EnvelopeBatch) -> dict[str, Any]:
    assert len(batch) == 1, (batch.rejects, batch.ignored)
    return batch.row(0)


def t(s: str) -> datetime:
    """Naive UTC datetime (what ``datetime64[us].item()`` gives) from an ISO string."""
    return datetime.fromisoformat(s)


HUB_NAIVE = HUB.replace(tzinfo=None)

# file -> expected uplink fields (None: the sample is not an uplink reading).
UPLINKS: dict[str, dict[str, Any]] = {
    "tts-v3-uplink.json": dict(
        lns="tts",
        dev_eui="70b3d52dd600035a",
        lns_device_id="eui-70b3d52dd600035a",
        app_id="starter-kit",
        f_cnt=14,
        f_cnt_present=True,
        f_port=2,
        payload=bytes.fromhex("b100001001e500d701"),
        time=t("2025-04-16T11:54:13.787593"),
        gateways=1,
        gateway_id="ttig-52ec",
        rssi=-31.0,
        snr=9.5,
        dr=5,
        sf=7,
        bandwidth=125_000,
        frequency=867_700_000,
        session="aAixKtmNZUKQXd4GqpHDsw==",
        decoded={
            "batteryVoltage": 3.4,
            "pressEvent": 1,
            "sensorTemperature": 21.5,
            "singlePressEventCounter": 16,
            "thermistorProperlyConnected": True,
        },
    ),
    "tts-v3-uplink-mqtt-doc.json": dict(
        lns="tts",
        dev_eui="4200000000000000",
        lns_device_id="dev1",
        app_id="app1",
        f_cnt=0,
        f_cnt_present=False,
        f_port=15,
        payload=b"Temperature = 0.0",
        time=HUB_NAIVE,
        gateways=1,
        gateway_id="eui-0242020000247803",
        rssi=-35.0,
        snr=5.0,
        dr=5,
        sf=7,
        bandwidth=125_000,
        frequency=868_500_000,
        decoded=None,
    ),
    "tts-v3-uplink-minimal.json": dict(
        lns="tts",
        dev_eui="",
        lns_device_id="foo-device",
        app_id="foo-app",
        f_cnt=42,
        f_cnt_present=True,
        f_port=42,
        payload=b"\x01\x02\x03",
        time=HUB_NAIVE,
        gateways=0,
        gateway_id=None,
        dr=-1,
        sf=-1,
        bandwidth=0,
        frequency=0,
        decoded={"test_key": 42},
        session="ESIzRA==",
    ),
    "chirpstack-v4-up.json": dict(
        lns="chirpstack-v4",
        dev_eui="0101010101010101",
        lns_device_id=None,
        app_id="17c82e96-be03-4f38-aef3-f83d48582d97",
        f_cnt=0,
        f_cnt_present=False,
        f_port=1,
        payload=b"\xaa",
        time=t("2022-07-18T09:34:15.775023"),
        gateways=1,
        gateway_id="0016c001f153a14c",
        rssi=-36.0,
        snr=10.5,
        dr=1,
        sf=11,
        bandwidth=125_000,
        frequency=867_100_000,
        decoded=None,
        session="00189440",
        dedup_key=uuid.UUID("3ac7e3c4-4401-4b8d-9386-a5c902f9202d"),
    ),
    "chirpstack-v4-up-full.json": dict(
        lns="chirpstack-v4",
        dev_eui="0101010101010101",
        f_cnt=0,
        f_cnt_present=True,
        f_port=1,
        payload=b"\xaa",
        time=t("2022-07-18T09:34:15.775023"),
        gateways=1,
        rssi=-36.0,
        snr=10.5,
        dr=1,
        sf=11,
        bandwidth=125_000,
        frequency=867_100_000,
        decoded={"temp": 22.5},
        dedup_key=uuid.UUID("3ac7e3c4-4401-4b8d-9386-a5c902f9202d"),
    ),
    "chirpstack-v3-up-fixture.json": dict(
        lns="chirpstack-v3",
        dev_eui="0102030405060708",
        app_id="123",
        f_cnt=123,
        f_cnt_present=True,
        f_port=101,
        payload=b"\x01\x02\x03\x04",
        time=t("2020-07-20T08:08:11.123456"),
        gateways=1,
        gateway_id="0102030405060708",
        rssi=110.0,
        dr=3,
        sf=9,
        bandwidth=125_000,
        frequency=868_100_000,
        decoded={"foo": "bar"},
    ),
}

SIDE_EVENTS: dict[str, tuple[type, dict[str, Any]]] = {
    "tts-v3-join.json": (
        Join,
        dict(
            dev_eui="0004a30b001c0530",
            lns_device_id="dev1",
            app_id="app1",
            lns="tts",
            session="AXBSH1Pk6Z0G166RlH16CQ==",
            time=datetime(2020, 2, 17, 7, 49, 9, 736532, tzinfo=UTC),
        ),
    ),
    "tts-v3-join-mqtt-doc.json": (Join, dict(dev_eui="4200000000000000", lns_device_id="dev1", time=HUB)),
    "tts-v3-join-minimal.json": (
        Join,
        dict(dev_eui="", lns_device_id="foo-device", app_id="foo-app", session="ESIzRA==", time=HUB),
    ),
    "chirpstack-v4-join.json": (
        Join,
        dict(
            dev_eui="0101010101010101",
            lns="chirpstack-v4",
            session="00189440",
            time=datetime(2022, 7, 18, 9, 33, 28, 823500, tzinfo=UTC),
        ),
    ),
    "chirpstack-v3-join.json": (
        Join,
        dict(dev_eui="0202020202020202", lns="chirpstack-v3", app_id="123", session="06682ea2", time=HUB),
    ),
    "chirpstack-v4-status.json": (
        Status,
        dict(
            dev_eui="0101010101010101",
            battery_pct=88.3,
            margin=10,
            external_power=False,
            time=datetime(2022, 7, 18, 9, 35, 6, 927172, tzinfo=UTC),
        ),
    ),
    "chirpstack-v4-status-full.json": (Status, dict(dev_eui="0101010101010101", battery_pct=88.3, margin=10)),
    "chirpstack-v3-status.json": (
        Status,
        dict(dev_eui="0202020202020202", battery_pct=75.5, margin=6, lns="chirpstack-v3"),
    ),
    "chirpstack-v4-log.json": (
        LogEvent,
        dict(
            dev_eui="0101010101010101",
            level="ERROR",
            code="UPLINK_MIC",
            context={"deduplication_id": "4e91db13-5ce3-4c8c-ab0f-dfc626cf0771"},
        ),
    ),
    "chirpstack-v3-error.json": (
        LogEvent,
        dict(dev_eui="0202020202020202", level="ERROR", code="DATA_UP_FCNT", context={"f_cnt": 123}),
    ),
    "chirpstack-v4-ack.json": (Ignored, dict(kind="ack", lns="chirpstack-v4")),
    "chirpstack-v4-txack.json": (Ignored, dict(kind="txack", lns="chirpstack-v4")),
    "chirpstack-v4-location.json": (Ignored, dict(kind="location", lns="chirpstack-v4")),
    "chirpstack-v3-ack.json": (Ignored, dict(kind="ack", lns="chirpstack-v3")),
    "tts-v3-down-ack.json": (Ignored, dict(kind="downlink_ack", lns="tts")),
    "tts-v3-down-failed.json": (Ignored, dict(kind="downlink_failed", lns="tts")),
    # No f_port in the Data Formats example: FPort 0 is never a reading.
    "tts-v3-uplink-dataformats.json": (Ignored, dict(kind="no reading", lns="tts")),
    "tts-v3-uplink-simulated.json": (Ignored, dict(kind="simulated", lns="tts")),
}

# Documentation placeholders ("data": "...") are not base64: dead letters.
REJECTED = {
    "chirpstack-v3-up.json": "invalid base64 in data",
    "chirpstack-v3-up-protobuf-json.json": "invalid base64 in data",
}


def test_every_sample_file_is_covered_by_an_expectation() -> None:
    files = {p.name for p in SAMPLES.glob("*.json")}
    assert files, f"no samples found in {SAMPLES}"
    assert files == set(UPLINKS) | set(SIDE_EVENTS) | set(REJECTED)


@pytest.mark.parametrize("name", sorted(UPLINKS))
def test_sample_uplink_fields(name: str) -> None:
    row = only_row(parse_one(sample(name)))
    for key, expected in UPLINKS[name].items():
        actual = row[key]
        if isinstance(expected, float):
            assert actual == pytest.approx(expected, rel=1e-6), key
        else:
            assert actual == expected, key


@pytest.mark.parametrize("name", sorted(SIDE_EVENTS))
def test_sample_side_event(name: str) -> None:
    cls, fields = SIDE_EVENTS[name]
    batch = parse_one(sample(name))
    events = [*batch.joins, *batch.statuses, *batch.logs, *batch.ignored]
    assert len(batch) == 0 and not batch.rejects
    assert len(events) == 1 and isinstance(events[0], cls)
    for key, expected in fields.items():
        assert getattr(events[0], key) == expected, key


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_sample_with_placeholder_payload_is_a_dead_letter(name: str) -> None:
    batch = parse_one(sample(name))
    assert len(batch) == 0
    assert [tuple(r) for r in batch.rejects] == [(0, "envelope", REJECTED[name])]


def test_all_samples_in_one_batch_put_every_index_in_exactly_one_place() -> None:
    names = sorted(p.name for p in SAMPLES.glob("*.json"))
    batch = parse_batch(["x"] * len(names), [sample(n) for n in names], HUB_TS)
    places = [
        *batch.index.tolist(),
        *(e.index for e in [*batch.joins, *batch.statuses, *batch.logs, *batch.ignored, *batch.rejects]),
    ]
    assert sorted(places) == list(range(len(names)))
    assert len(batch) == len(UPLINKS)
    assert batch.offsets[-1] == batch.buf.shape[0]
    assert batch.dedup_key.shape == (len(UPLINKS), 16)


def test_placeholder_sample_with_real_base64_gives_json_v3_fields() -> None:
    msg = sample_obj("chirpstack-v3-up.json")
    msg["data"] = "AQI="
    row = only_row(parse_one(msg))
    assert row["dev_eui"] == "0202020202020202" and row["f_cnt"] == 10 and row["f_port"] == 5
    assert row["payload"] == b"\x01\x02"
    assert row["time"] == t("2016-11-25T16:24:37.295915")  # json_v3: the gateway's time, no top-level time
    assert (row["rssi"], row["snr"], row["gateway_id"]) == (-57.0, 10.0, "0303030303030303")
    assert (row["dr"], row["sf"], row["bandwidth"]) == (5, 7, 125_000)
    assert row["decoded"] == {"temperatureSensor": {"1": 25}, "humiditySensor": {"1": 32}}


def test_protobuf_json_sample_decodes_base64_ids_kilohertz_and_object_json() -> None:
    msg = sample_obj("chirpstack-v3-up-protobuf-json.json")
    msg["data"] = "AQI="
    row = only_row(parse_one(msg))
    assert row["lns"] == "chirpstack-v3"
    assert row["dev_eui"] == "0202020202020202"
    assert row["gateway_id"] == "0303030303030303"
    assert (row["dr"], row["sf"], row["bandwidth"], row["frequency"]) == (1, 11, 125_000, 868_100_000)
    assert row["decoded"] == {"temperatureSensor": 25, "humiditySensor": 32}
    assert row["time"] == t("2019-11-08T13:59:25.048445")


def test_dataformats_sample_with_an_f_port_reads_ns_time_and_us_band_data_rate() -> None:
    msg = sample_obj("tts-v3-uplink-dataformats.json")
    msg["uplink_message"]["f_port"] = 1
    row = only_row(parse_one(msg))
    assert row["payload"] == bytes.fromhex("8241de") and row["f_cnt"] == 1
    assert row["time"] == t("2020-02-12T15:15:45.789585")
    assert (row["rssi"], row["snr"], row["gateway_id"]) == (-35.0, 5.0, "gtw1")
    assert (row["sf"], row["dr"], row["frequency"]) == (7, 3, 868_300_000)  # band US_902_928: SF7 = DR3
    assert row["decoded"] == {"temperature": 1.0, "luminosity": 0.64}


def test_simulated_uplink_is_stored_only_when_asked_and_keyed_on_the_as_time() -> None:
    raw = sample("tts-v3-uplink-simulated.json")
    row = only_row(parse_one(raw, store_simulated=True))
    assert row["simulated"] is True
    assert row["time"] == t("2021-02-04T19:32:31.488210")  # inner received_at is year 1 -> missing
    assert row["dev_eui"] == "" and row["lns_device_id"] == "dev1"
    assert math.isnan(row["rssi"]) and row["gateways"] == 0 and row["dr"] == -1
    again = only_row(parse_batch(["x"], [raw], HUB_TS + 60, store_simulated=True))
    assert again["dedup_key"] == row["dedup_key"]
    msg = orjson.loads(raw)
    msg["received_at"] = "2021-02-04T19:32:32.000000000Z"
    assert only_row(parse_one(msg, store_simulated=True))["dedup_key"] != row["dedup_key"]


def test_simulated_uplinks_without_any_time_in_one_batch_are_each_kept() -> None:
    msg = sample_obj("tts-v3-uplink-simulated.json")  # no DevEUI: the device is its TTS device id
    del msg["received_at"]
    other = orjson.loads(orjson.dumps(msg))
    other["uplink_message"]["frm_payload"] = "AQ=="
    raws = [orjson.dumps(m) for m in (msg, other, msg)]
    batch = parse_batch(["x"] * 3, raws, HUB_TS, store_simulated=True)
    assert batch.hub_clock.all() and len({bytes(k) for k in batch.dedup_key}) == 2
    us = (batch.time - np.datetime64(HUB_NAIVE, "us")).astype(np.int64)
    assert us.tolist() == [0, 1, 0]  # the third message is a copy of the first


def test_dedup_key_is_stable_across_hub_time_and_differs_per_uplink() -> None:
    names = [
        "tts-v3-uplink.json",
        "tts-v3-uplink-minimal.json",
        "tts-v3-uplink-mqtt-doc.json",
        "chirpstack-v4-up.json",
        "chirpstack-v3-up-fixture.json",
    ]
    first = parse_batch(["x"] * len(names), [sample(n) for n in names], HUB_TS)
    second = parse_batch(["x"] * len(names), [sample(n) for n in names], HUB_TS + 3600)
    assert np.array_equal(first.dedup_key, second.dedup_key)
    assert len({bytes(k) for k in first.dedup_key}) == len(names)
    msg = sample_obj("tts-v3-uplink.json")
    base = only_row(parse_one(msg))["dedup_key"]
    for path, value in [
        (("uplink_message", "f_cnt"), 15),
        (("uplink_message", "session_key_id"), "AAAA"),
        (("uplink_message", "received_at"), "2025-04-16T11:54:14Z"),
    ]:
        changed = orjson.loads(orjson.dumps(msg))
        changed[path[0]][path[1]] = value
        assert only_row(parse_one(changed))["dedup_key"] != base, path


def test_stored_keys_fold_both_halves_of_the_key() -> None:
    rng = np.random.default_rng(24)
    keys = rng.integers(0, 256, (500, 16), dtype=np.uint8)
    # time-ordered ids (UUIDv7) of one millisecond share most of their first half: the second half keeps them apart
    v7 = [uuid.UUID(bytes=bytes.fromhex("0193a1b2c3d47000") + rng.bytes(8)) for _ in range(200)]
    keys = np.concatenate([keys, np.frombuffer(b"".join(u.bytes for u in v7), np.uint8).reshape(-1, 16)])
    folded = stored_keys(keys)
    assert folded.dtype == np.int64
    assert folded.tolist() == [stored_key(bytes(k)) for k in keys]
    assert len(set(folded.tolist())) == len(keys)
    assert folded.min() < 0 < folded.max()  # the whole signed range is used
    assert stored_key(bytes(16)) == 0 and stored_key(b"\xff" * 8 + bytes(8)) == -1
    assert stored_keys(key_of_stored(folded)).tolist() == folded.tolist()


def test_f_cnt_zero_after_join_is_present_in_v41_and_absent_in_v40() -> None:
    rows = parse_batch(["a", "b"], [sample("chirpstack-v4-up-full.json"), sample("chirpstack-v4-up.json")], HUB_TS)
    assert rows.f_cnt.tolist() == [0, 0]
    assert rows.f_cnt_present.tolist() == [True, False]


def test_fport_zero_and_empty_payload_are_ignored_as_no_reading() -> None:
    msg = sample_obj("chirpstack-v4-up-full.json")
    mac_only = dict(msg, fPort=0, data="")
    empty = dict(msg, data="")
    tts = sample_obj("tts-v3-uplink.json")
    del tts["uplink_message"]["frm_payload"]
    batch = parse_batch(["a"] * 3, [orjson.dumps(m) for m in (mac_only, empty, tts)], HUB_TS)
    assert len(batch) == 0 and not batch.rejects
    assert [(e.index, e.kind) for e in batch.ignored] == [(0, "no reading"), (1, "no reading"), (2, "no reading")]


def test_chirpstack_time_from_a_drifting_gateway_clock_is_replaced_by_ns_time() -> None:
    msg = sample_obj("chirpstack-v4-up-full.json")
    msg["time"] = "2022-07-18T09:40:00+00:00"  # gateway clock 6 minutes ahead
    assert only_row(parse_one(msg))["time"] == t("2022-07-18T09:34:15.775023")
    msg["time"] = "2022-07-18T09:34:20.5+00:00"  # within 30 s: ChirpStack's time stands
    assert only_row(parse_one(msg))["time"] == t("2022-07-18T09:34:20.500000")
    msg["time"] = "1970-01-01T00:00:10+00:00"  # unset gateway clock
    assert only_row(parse_one(msg))["time"] == t("2022-07-18T09:34:15.775023")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2025-04-16 11:54:13Z", "bad timestamp: uplink_message.received_at"),
        ("2025-04-16T11:54:13", "bad timestamp: uplink_message.received_at"),
        ("2025-13-16T11:54:13Z", "bad timestamp: uplink_message.received_at"),
        (1713268453, "bad timestamp: uplink_message.received_at"),
        ("1999-12-31T23:59:59Z", "timestamp out of range: uplink_message.received_at"),
        ("2200-01-01T00:00:00Z", "timestamp out of range: uplink_message.received_at"),
    ],
)
def test_bad_reading_time_is_a_dead_letter(value: Any, reason: str) -> None:
    msg = sample_obj("tts-v3-uplink.json")
    msg["uplink_message"]["received_at"] = value
    batch = parse_one(msg)
    assert len(batch) == 0
    assert len(batch.rejects) == 1 and batch.rejects[0].reason.startswith(reason)


@pytest.mark.parametrize(
    "value",
    [
        "2025-04-16T13:54:13.787593298+02:00",
        "2025-04-16t11:54:13.787593298z",
        "2025-04-16T11:54:13.787593Z",
        "2025-04-16T11:54:13.787593+00:00",
    ],
)
def test_reading_time_accepts_every_rfc3339_form(value: str) -> None:
    msg = sample_obj("tts-v3-uplink.json")
    msg["uplink_message"]["received_at"] = value
    assert only_row(parse_one(msg))["time"] == t("2025-04-16T11:54:13.787593")


def test_strongest_of_several_gateways_is_reported_with_the_distinct_count() -> None:
    msg = sample_obj("tts-v3-uplink.json")
    rx = msg["uplink_message"]["rx_metadata"]
    rx.append(dict(rx[0], rssi=-20, snr=3.0))  # second antenna of the same gateway
    rx.append({"gateway_ids": {"gateway_id": "other"}, "rssi": -100, "snr": -5.0})
    row = only_row(parse_one(msg))
    assert (row["rssi"], row["snr"], row["gateway_id"], row["gateways"]) == (-20.0, 3.0, "ttig-52ec", 2)


@pytest.mark.parametrize(
    ("mutate", "stage", "reason"),
    [
        (
            lambda m: m["end_device_ids"].pop("device_id"),
            "envelope",
            "required field missing: end_device_ids.device_id",
        ),
        (lambda m: m["end_device_ids"].update(dev_eui="70B3D52DD60003"), "envelope", "bad DevEUI"),
        (lambda m: m["end_device_ids"].update(dev_eui="70B3D52DD600035G"), "envelope", "bad DevEUI"),
        (lambda m: m["uplink_message"].update(f_cnt="14"), "envelope", "wrong type: uplink_message.f_cnt"),
        (lambda m: m["uplink_message"].update(f_port=256), "envelope", "out of range: uplink_message.f_port"),
        (lambda m: m["uplink_message"].update(frm_payload="sQAAEAHlANc"), "envelope", "invalid base64"),
        (lambda m: m["uplink_message"].update(rx_metadata={}), "envelope", "wrong type: uplink_message.rx_metadata"),
        (
            lambda m: m["uplink_message"]["settings"].update(frequency="86.7e7"),
            "envelope",
            "wrong type: uplink_message.settings.frequency",
        ),
    ],
)
def test_malformed_tts_uplink_is_a_dead_letter_naming_the_field(mutate: Any, stage: str, reason: str) -> None:
    msg = sample_obj("tts-v3-uplink.json")
    mutate(msg)
    batch = parse_one(msg)
    assert len(batch) == 0 and len(batch.rejects) == 1
    assert batch.rejects[0].stage == stage and batch.rejects[0].reason.startswith(reason)
    assert batch.rejects[0].lns == "tts"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not JSON"),
        (b"\x0a\x10\x01\x02", "not JSON"),
        (b'{"a":', "not JSON"),
        (b"[1, 2]", "envelope is an array, expected a JSON object"),
        (b'"up"', "envelope is a string, expected a JSON object"),
        (b"null", "envelope is null, expected a JSON object"),
        (b'{"app_id": "a", "dev_id": "d", "payload_raw": "AQI=", "counter": 1}', "TTN V2 message"),
        (b'{"hello": "world"}', "unknown message format"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),
        (
            b'{"deviceInfo": {"devEui": "0101010101010101"}, "deduplicationId": "x", "fPort": 1, "data": "AQ=="}',
            "bad UUID in deduplicationId",
        ),
    ],
)
def test_unusable_message_is_a_dead_letter(raw: bytes, reason: str) -> None:
    batch = parse_one(raw)
    assert len(batch) == 0
    assert [(r.index, r.stage) for r in batch.rejects] == [(0, "envelope")]
    assert batch.rejects[0].reason.startswith(reason), batch.rejects[0].reason


def test_binary_protobuf_gets_a_hint_in_its_reason() -> None:
    batch = parse_one(b"\x0a\x10\x3a\xc7\xe3\xc4\x44\x01\x4b\x8d\x93\x86")
    assert "Protobuf" in batch.rejects[0].reason


def test_message_over_the_size_limit_is_a_size_dead_letter() -> None:
    raw = sample("tts-v3-uplink.json")
    batch = parse_batch(["a", "b"], [raw, raw], HUB_TS, max_message_bytes=len(raw) - 1)
    assert [(r.index, r.stage) for r in batch.rejects] == [(0, "size"), (1, "size")]
    assert str(len(raw)) in batch.rejects[0].reason
    assert len(parse_batch(["a"], [raw], HUB_TS, max_message_bytes=len(raw))) == 1


def test_empty_batch_has_empty_columns_of_the_right_types() -> None:
    batch = parse_batch([], [], HUB_TS)
    assert len(batch) == 0 and batch.offsets.tolist() == [0]
    assert batch.time.dtype == np.dtype("datetime64[us]") and batch.dedup_key.shape == (0, 16)


def test_column_dtypes() -> None:
    names = sorted(UPLINKS)
    batch = parse_batch(["x"] * len(names), [sample(n) for n in names], HUB_TS)
    expected = dict(
        index=np.int64,
        f_cnt=np.int64,
        f_cnt_present=np.bool_,
        f_port=np.int16,
        buf=np.uint8,
        offsets=np.int64,
        rssi=np.float32,
        snr=np.float32,
        gateways=np.int16,
        dr=np.int16,
        sf=np.int16,
        bandwidth=np.int32,
        frequency=np.int64,
        dedup_key=np.uint8,
        simulated=np.bool_,
    )
    for name, dtype in expected.items():
        assert getattr(batch, name).dtype == np.dtype(dtype), name
    assert batch.dev_eui.dtype == np.dtype("S16")
    assert batch.time.dtype == np.dtype("datetime64[us]")
    for name in ("lns", "decoded", "gateway_id", "lns_device_id", "app_id", "session"):
        assert getattr(batch, name).dtype == np.dtype(object), name


def test_select_takes_rows_with_their_payload_bytes() -> None:
    names = sorted(UPLINKS)
    batch = parse_batch(["x"] * len(names), [sample(n) for n in names], HUB_TS)
    picked = batch.select([3, 0])
    assert len(picked) == 2
    assert [repr(picked.row(k)) for k in range(2)] == [repr(batch.row(3)), repr(batch.row(0))]  # NaN-safe
    masked = batch.select(batch.lns == "chirpstack-v4")
    assert masked.index.tolist() == [i for i, n in enumerate(names) if n.startswith("chirpstack-v4")]
    assert masked.offsets[-1] == masked.buf.shape[0] == sum(len(masked.payload(k)) for k in range(len(masked)))
    assert len(batch.select([])) == 0


def test_chirpstack_v3_deveui_of_the_wrong_length_is_a_bad_deveui() -> None:
    msg = sample_obj("chirpstack-v3-up-fixture.json")
    msg["devEUI"] = "010203040506070"
    batch = parse_one(msg)
    assert batch.rejects[0].reason.startswith("bad DevEUI: devEUI must be 16 hex digits")


def test_chirpstack_v4_without_time_uses_ns_time_and_rejects_a_wild_time_without_one() -> None:
    msg = sample_obj("chirpstack-v4-up-full.json")
    msg["rxInfo"][0]["nsTime"] = "2022-07-18T09:34:16.5+00:00"
    del msg["time"]
    assert only_row(parse_one(msg))["time"] == t("2022-07-18T09:34:16.500000")
    wild = sample_obj("chirpstack-v4-up.json")  # v4.0: no nsTime to fall back on
    wild["time"] = "1970-01-01T00:00:00+00:00"
    batch = parse_one(wild)
    assert [tuple(r) for r in batch.rejects] == [(0, "envelope", "timestamp out of range: time")]
    assert batch.rejects[0].lns == "chirpstack-v4"


def test_chirpstack_v3_gateway_time_out_of_range_falls_back_to_hub_time() -> None:
    msg = sample_obj("chirpstack-v3-up-fixture.json")
    msg["rxInfo"][0]["time"] = "1980-01-06T00:00:00Z"  # GPS epoch from a gateway without a fix
    assert only_row(parse_one(msg))["time"] == HUB_NAIVE
    msg["publishedAt"] = "2020-07-20T08:08:11.5Z"
    assert only_row(parse_one(msg))["time"] == t("2020-07-20T08:08:11.500000")


def test_chirpstack_v3_gateway_time_out_of_range_identifies_no_frame() -> None:
    msg = sample_obj("chirpstack-v3-up-fixture.json")  # its uplinkID is all zeros
    msg["rxInfo"][0]["time"] = "1980-01-06T00:00:00Z"  # every frame of a gateway without GPS fix
    first = only_row(parse_one(msg))
    assert only_row(parse_batch(["t"], [orjson.dumps(msg)], HUB_TS + 1.5))["dedup_key"] == first["dedup_key"]
    msg["fCnt"] = 0  # after a reset
    reset = only_row(parse_one(msg))
    msg["rxInfo"][0]["rssi"] = 108  # the next reset, sending the same counter and bytes again
    assert only_row(parse_one(msg))["dedup_key"] != reset["dedup_key"]


def test_chirpstack_v3_key_without_ids_or_times_is_the_frame_and_its_reception() -> None:
    msg = sample_obj("chirpstack-v3-up-fixture.json")
    keyed = only_row(parse_one(msg))["dedup_key"]
    assert only_row(parse_batch(["t"], [orjson.dumps(msg)], HUB_TS + 5))["dedup_key"] == keyed
    del msg["rxInfo"][0]["time"]  # the fixture's uplinkID is all zeros: nothing identifies the frame
    a = only_row(parse_batch(["t"], [orjson.dumps(msg)], HUB_TS))
    b = only_row(parse_batch(["t"], [orjson.dumps(msg)], HUB_TS + 1.5))  # the same message, redelivered
    assert a["dedup_key"] == b["dedup_key"] and a["hub_clock"] and b["hub_clock"]
    assert (a["time"], b["time"]) == (HUB_NAIVE, t("2026-03-02T12:00:01.500000"))
    second = {"gatewayID": "0a0b0c0d0e0f0102", "rssi": -101, "loRaSNR": -3.5, "channel": 2}
    changes: list[tuple[str, Any]] = [
        ("fCnt", 124),
        ("data", "AQIDBQ=="),
        ("devAddr", "06682ea2"),
        ("txInfo", {"frequency": 868300000, "dr": 3}),
        ("rxInfo.rssi", 109),  # a new transmission of the same bytes, measured anew
        ("rxInfo.loRaSNR", 5.5),
        ("rxInfo.gatewayID", "0102030405060709"),
        ("rxInfo+", second),
    ]
    for path, value in changes:
        changed = orjson.loads(orjson.dumps(msg))
        if path == "rxInfo+":
            changed["rxInfo"].append(value)
        elif path.startswith("rxInfo."):
            changed["rxInfo"][0][path.split(".")[1]] = value
        else:
            changed[path] = value
        assert only_row(parse_one(changed))["dedup_key"] != a["dedup_key"], path
    two = orjson.loads(orjson.dumps(msg))
    two["rxInfo"].append(second)
    swapped = orjson.loads(orjson.dumps(two))
    swapped["rxInfo"].reverse()
    assert only_row(parse_one(two))["dedup_key"] == only_row(parse_one(swapped))["dedup_key"]


def test_tts_key_without_network_server_time_is_the_frame_and_its_reception() -> None:
    msg = sample_obj("tts-v3-uplink.json")
    del msg["uplink_message"]["received_at"], msg["received_at"]
    first = only_row(parse_one(msg))
    again = only_row(parse_batch(["x"], [orjson.dumps(msg)], HUB_TS + 1.5))
    assert first["hub_clock"] and again["dedup_key"] == first["dedup_key"]
    msg["uplink_message"]["rx_metadata"][0]["timestamp"] += 60_000_000  # the counter repeated a minute later
    msg["uplink_message"]["rx_metadata"][0]["uplink_token"] = "Cg=="
    assert only_row(parse_one(msg))["dedup_key"] != first["dedup_key"]


def _v3_timeless(dev_eui: str, f_cnt: int, uplink_id: str) -> bytes:
    msg = sample_obj("chirpstack-v3-up-fixture.json")
    msg.update(devEUI=dev_eui, fCnt=f_cnt)
    msg["rxInfo"][0].update(uplinkID=uplink_id)
    del msg["rxInfo"][0]["time"]
    return orjson.dumps(msg)


def test_uplinks_timed_by_the_hub_are_a_microsecond_apart_per_device_copies_share_the_time() -> None:
    a, b = "0102030405060708", "0102030405060709"
    ids = [f"00000000-0000-0000-0000-{k:012d}" for k in range(1, 6)]
    tts = sample_obj("tts-v3-uplink.json")
    tts["uplink_message"].pop("received_at")
    del tts["received_at"]
    payloads = [
        _v3_timeless(a, 10, ids[0]),
        _v3_timeless(b, 10, ids[1]),
        sample("chirpstack-v3-up-fixture.json"),  # the gateway's time
        _v3_timeless(a, 11, ids[2]),
        _v3_timeless(a, 10, ids[0]),  # a copy of the first
        orjson.dumps(tts),
        _v3_timeless(a, 12, ids[3]),
    ]
    batch = parse_batch(["t"] * len(payloads), payloads, HUB_TS)
    us = (batch.time - np.datetime64(HUB_NAIVE, "us")).astype(np.int64)
    assert batch.hub_clock.tolist() == [True, True, False, True, True, True, True]
    assert us[batch.hub_clock].tolist() == [0, 0, 1, 0, 0, 2]
    assert batch.time[2] == np.datetime64("2020-07-20T08:08:11.123456")
    assert batch.dedup_key[0].tobytes() == batch.dedup_key[4].tobytes()


def test_broken_json_with_control_characters_gets_no_protobuf_hint() -> None:
    raw = sample("tts-v3-uplink.json").replace(b"starter-kit", b"starter\x01kit")
    reason = parse_one(raw).rejects[0].reason
    assert reason.startswith("not JSON") and "Protobuf" not in reason


@pytest.mark.parametrize(
    ("topic", "lns"),
    [
        ("v3/parking@ttn/devices/space-7/up", "tts"),
        ("application/0b0e63a1-5f4c-4f5e-9c4e-2b7b4f1a0c11/device/0101010101010101/event/up", "chirpstack-v4"),
        ("application/7/device/0101010101010101/event/up", "chirpstack-v3"),
        ("application/7/device/0101010101010101/rx", "chirpstack-v3"),
        ("application/parking/device/0101010101010101/event/up", None),
        ("city/sensors/space-7", None),
        ("", None),
    ],
)
def test_unreadable_message_keeps_the_server_kind_its_topic_names(topic: str, lns: str | None) -> None:
    batch = parse_one(b"[]", topic)
    assert [(r.reason, r.lns) for r in batch.rejects] == [("envelope is an array, expected a JSON object", lns)]
