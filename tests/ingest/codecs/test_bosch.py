"""Bosch TPS110: rules beyond the public vectors, and the domain mapping."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.codecs import get


def decode(ports: list[int], *hexes: str):
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in payloads])])
    return get("bosch/tps110").decode(np.array(ports), np.frombuffer(b"".join(payloads), np.uint8), offsets)


def test_startup_lists_only_non_zero_debug_codes_and_omits_unknown_reset_cause() -> None:
    objs = decode([3, 3], "0000000000000000000000000102030000", "0000000000000000050f00000102030501").objects()
    assert objs[0] == {"type": "startup", "debugCodes": [], "firmwareVersion": "1.2.3", "occupied": False}
    assert objs[1]["debugCodes"] == [0xF05]
    assert "resetCause" not in objs[1] and objs[1]["occupied"] is True


def test_heartbeat_without_temperature_byte() -> None:
    assert decode([2], "00").objects() == [{"type": "heartbeat", "occupied": False}]


def test_debug_frame_timestamp_is_signed_little_endian() -> None:
    (obj,) = decode([6], "ffffffff3412000007000000").objects()
    assert obj == {"type": "debug", "timestamp": -1, "debugCode": 0x234, "sequenceNumber": 7}


def test_domain_maps_occupancy_and_temperature() -> None:
    decoded = decode([1, 2, 4], "01", "00f6", "0102")
    q = get("bosch/tps110").domain(decoded, {})
    assert q["occupied"].present.tolist() == [True, True, False]
    assert q["occupied"].values[:2].tolist() == [True, False]
    assert q["temperature_c"].present.tolist() == [False, True, False]
    assert q["temperature_c"].values[1] == -10
