"""Envelopes: the simulator's messages have the shape of the reference samples of each network server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.sessions import Sessions
from stadtpuls.simulators.timebase import parse_start
from stadtpuls.simulators.uplinks import (
    Network,
    UplinkFacts,
    chirpstack_join,
    chirpstack_uplink,
    stamps,
    topic,
    tts_join,
    tts_uplink,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "lns-formats" / "samples"
TTS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(\d{3})?Z$")
CS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(\d{3})?\+00:00$")


def _facts(lns: str, f_cnt: int) -> UplinkFacts:
    city = build_city("small", 1, lns)
    device = city.devices[0]
    session = Sessions(city, 1, 0).join(0, 0)
    t = parse_start("2025-03-03T08:00:00Z")
    gws = [(city.gateways[0], -97.0, 7.25), (city.gateways[1], -118.0, -3.5)]
    return UplinkFacts(
        device,
        session,
        f_cnt,
        85,
        b"\x01\x75\x5a",
        t,
        9,
        867_300_000,
        4,
        185_344,
        gws,
        "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        ["01JNQ5991YDFR0AZR8AQ35VPCG"] * 5,
        ["AAAA", "BBBB"],
        [1, 2],
        stamps(t, 123, lns),
    )


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def test_tts_uplink_has_the_sample_shape_and_omits_zero_values():
    msg = orjson.loads(orjson.dumps(tts_uplink(Network(), _facts("tts", 14))))
    sample = _sample("tts-v3-uplink.json")
    assert set(sample) - {"correlation_ids"} <= set(msg)
    up = msg["uplink_message"]
    assert set(sample["uplink_message"]) - {"decoded_payload", "confirmed", "last_battery_percentage"} <= set(up)
    assert set(sample["uplink_message"]["rx_metadata"][0]) <= set(up["rx_metadata"][0]) | {"uplink_token"}
    assert up["f_cnt"] == 14 and up["frm_payload"] == "AXVa" and up["settings"]["frequency"] == "867300000"
    assert up["settings"]["data_rate"]["lora"] == {"bandwidth": 125000, "spreading_factor": 9, "coding_rate": "4/5"}
    assert TTS_TIME.match(up["received_at"]) and up["received_at"].endswith("000123Z")
    assert msg["end_device_ids"]["dev_eui"].isupper() and up["consumed_airtime"] == "0.185344s"
    assert [g["rssi"] for g in up["rx_metadata"]] == [-97.0, -118.0]
    first = orjson.loads(orjson.dumps(tts_uplink(Network(), _facts("tts", 0))))["uplink_message"]
    assert "f_cnt" not in first


def test_chirpstack_uplink_has_every_field_of_the_current_serializer():
    msg = orjson.loads(orjson.dumps(chirpstack_uplink(Network(), _facts("chirpstack", 0))))
    sample = _sample("chirpstack-v4-up-full.json")
    assert set(msg) == set(sample) - {"object"}
    assert set(msg["deviceInfo"]) == set(sample["deviceInfo"])
    assert msg["fCnt"] == 0 and msg["confirmed"] is False and msg["dr"] == 3
    assert msg["deviceInfo"]["devEui"].islower() and CS_TIME.match(msg["time"])
    rx = msg["rxInfo"][0]
    assert set(sample["rxInfo"][0]) <= set(rx) and rx["channel"] == 4 and isinstance(rx["rssi"], int)
    assert msg["txInfo"]["modulation"]["lora"]["spreadingFactor"] == 9


def test_joins_and_topics_follow_the_samples():
    net = Network()
    city = build_city("small", 1, "tts")
    d = city.devices[0]
    s = Sessions(city, 1, 0).join(0, 0)
    join = tts_join(net, d, s, parse_start("2025-03-03"), ["X"] * 5)
    assert set(join) == set(_sample("tts-v3-join.json")) and join["join_accept"]["session_key_id"] == s.session_key_id
    assert topic(net, d, "join") == f"v3/city-sensors@stadtpuls/devices/{d.lns_device_id}/join"
    cs = build_city("small", 1, "chirpstack").devices[0]
    cjoin = chirpstack_join(net, cs, s, parse_start("2025-03-03"), "c9dbe358-2578-4fb7-b295-66b44edc45a6")
    assert set(_sample("chirpstack-v4-join.json")) <= set(cjoin)
    assert topic(net, cs) == f"application/{net.cs_application_id}/device/{cs.dev_eui}/event/up"
