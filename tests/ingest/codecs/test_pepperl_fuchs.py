"""WILSEN.sonic.level: length-prefixed records, toFixed(1) temperature rounding, skipped and rejected records,
encoder, domain mapping."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

from stadtpuls.ingest.codecs import EncodeError, get

CID = "pepperl-fuchs/wilsen-sonic-level"


def decode_hex(*hexes: str) -> tuple[list[Any], list[Any], Any]:
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    decoded = get(CID).decode(np.ones(len(payloads)), np.frombuffer(b"".join(payloads), np.uint8), offsets)
    return decoded.objects(), decoded.error.tolist(), decoded


def temp_record(x: float) -> str:
    return "060201" + struct.pack(">f", x).hex()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (20.25, 20.3),
        (-0.75, -0.8),
        (22.7, 22.7),
        (0.05, 0.1),
        (-0.04, 0.0),
        (-0.0, 0.0),
        (1e30, 1.0000000150474662e30),
    ],
)
def test_temperature_rounds_like_javascript_to_fixed_1(value: float, expected: float) -> None:
    objects, _, _ = decode_hex(temp_record(value))
    temp = objects[0]["temp"]
    assert temp == expected
    assert str(temp) != "-0.0"  # -0 is emitted as 0


def test_non_finite_temperature_is_rejected_unless_overwritten() -> None:
    nan, inf = "060201" + "7fc00000", "060201" + "ff800000"
    objects, errors, _ = decode_hex(nan, inf + "030b0650", nan + temp_record(1.25))
    assert objects[:2] == [None, None]
    assert errors[:2] == [
        "temp is not a finite float32: 0x7FC00000",
        "temp is not a finite float32: 0xFF800000",
    ]
    assert objects[2] == {"payload": (nan + temp_record(1.25)).upper(), "temp": 1.3}


def test_unknown_records_are_skipped_by_their_length_byte() -> None:
    ack = "04f1010100"  # configuration acknowledgement
    objects, _, _ = decode_hex(ack + "030b0650" + "050c0100ff00")
    assert objects == [{"payload": (ack + "030b0650" + "050c0100ff00").upper(), "fillinglvl": 80}]


def test_longer_record_reads_its_leading_value_bytes() -> None:
    objects, _, _ = decode_hex("040b065dff")
    assert objects[0]["fillinglvl"] == 93


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("030b0650" + "05", "truncated record header: 1 byte left where length and ID need 3"),
        ("010b0650", "malformed record: length byte 1 is below 2"),
        ("060b0100", "truncated record: a record of length 6 runs past the end of the payload"),
        ("030b0100", "record 0x0B01 (proxx) too short: needs 2 value bytes"),
    ],
)
def test_malformed_frames_are_rejected_with_reason(frame: str, error: str) -> None:
    objects, errors, _ = decode_hex(frame)
    assert objects == [None] and errors == [error]


def test_serial_number_ends_at_first_nul_and_empty_frame_has_payload_only() -> None:
    serial = "102a25" + b"P+F-42".hex() + "00" + "41" * 7
    objects, _, _ = decode_hex(serial, "")
    assert objects[0]["serial_nr"] == "P+F-42"
    assert objects[1] == {"payload": ""}


def test_domain_fill_from_depth_or_from_the_sensor_fill_level() -> None:
    codec = get(CID)
    buf, offsets = codec.encode(1, {"proxx": [50, 50], "fillinglvl": [70, 70], "temp": [12.5, 12.5]})
    decoded = codec.decode(np.ones(2), buf, offsets)
    dom = codec.domain(decoded, {"depth_mm": np.array([1000.0, np.nan])})
    assert dom["distance_mm"].values.tolist() == [500.0, 500.0]
    assert dom["fill_pct"].values.tolist() == [50.0, 70.0]
    assert dom["temperature_c"].values.tolist() == [12.5, 12.5]
    assert not dom["battery_v"].present.any()
    _, _, mm = decode_hex("040b0206b6")
    assert codec.domain(mm, {})["distance_mm"].values.tolist() == [1718.0]


def test_encode_rejects_derived_payload_and_bad_serial() -> None:
    codec = get(CID)
    with pytest.raises(EncodeError) as exc:
        codec.encode(1, {"payload": ["00"]})
    assert exc.value.field == "payload"
    with pytest.raises(EncodeError) as exc:
        codec.encode(1, {"serial_nr": np.array(["x" * 15], dtype=object)})
    assert exc.value.field == "serial_nr"
