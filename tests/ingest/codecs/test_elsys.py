"""Elsys ERS: type/value records, CO2, unsupported and unknown types, encoder checks, domain mapping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stadtpuls.ingest.codecs import EncodeError, get

CID = "elsys/ers"


def decode_hex(*hexes: str) -> tuple[list[Any], list[Any], Any]:
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    decoded = get(CID).decode(np.full(len(payloads), 5), np.frombuffer(b"".join(payloads), np.uint8), offsets)
    return decoded.objects(), decoded.error.tolist(), decoded


def test_negative_temperature_co2_and_supply_voltage() -> None:
    objects, _, _ = decode_hex("01ff9c" + "0601c2" + "070e10")
    assert objects == [{"temperature": -10.0, "co2": 450, "vdd": 3600}]


def test_unknown_type_ends_parsing_and_keeps_fields() -> None:
    objects, errors, _ = decode_hex("0100e2" + "3d01020304" + "0229", "00")
    assert objects == [{"temperature": 22.6}, {}]
    assert errors == [None, None]


def test_type_known_to_the_official_decoder_but_not_decoded_is_rejected() -> None:
    objects, errors, _ = decode_hex("0100e2" + "03010203", "0100e2" + "1c0010")
    assert objects == [None, None]
    assert errors == ["unsupported record type 0x03", "unsupported record type 0x1c"]


def test_truncated_record_is_rejected() -> None:
    objects, errors, _ = decode_hex("0100e2" + "0400")
    assert objects == [None]
    assert errors == ["truncated record: type 0x04 (light) needs 2 value bytes"]


def test_repeated_type_overwrites() -> None:
    objects, _, _ = decode_hex("0501" + "0229" + "0507")
    assert objects == [{"motion": 7, "humidity": 41}]


def test_domain_maps_to_environment_quantities() -> None:
    _, _, decoded = decode_hex("0100e2" + "0229" + "040027" + "0506" + "0601c2" + "070e10", "0400")
    dom = get(CID).domain(decoded, {})
    assert {k: (c.values[0], bool(c.present[0])) for k, c in dom.items()} == {
        "temperature_c": (22.6, True),
        "humidity_pct": (41.0, True),
        "light_lux": (39.0, True),
        "motion": (6.0, True),
        "co2_ppm": (450.0, True),
        "battery_v": (3.6, True),
    }
    assert not any(c.present[1] for c in dom.values())


def test_encode_rounds_temperature_to_device_resolution_and_checks_ranges() -> None:
    codec = get(CID)
    buf, _ = codec.encode(5, {"temperature": [22.64], "humidity": [41]})
    assert bytes(buf).hex() == "0100e20229"
    with pytest.raises(EncodeError) as exc:
        codec.encode(5, {"humidity": [40.5]})
    assert exc.value.field == "humidity"
    with pytest.raises(EncodeError) as exc:
        codec.encode(5, {"temperature": [4000.0]})
    assert exc.value.field == "temperature"
