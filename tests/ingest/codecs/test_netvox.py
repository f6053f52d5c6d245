"""Netvox R718X / R719A: the rules the public vectors do not show, and the domain mapping."""

from __future__ import annotations

import numpy as np
import pytest

from stadtpuls.ingest.codecs import EncodeError, get


def decode_hex(codec_id: str, port: int, *hexes: str) -> list:
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in payloads])])
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    return get(codec_id).decode(np.full(len(payloads), port), buf, offsets).objects()


@pytest.mark.parametrize(
    ("battery", "volt"),
    [
        (0xA0, "3.2(low battery)"),
        (0x9E, "3(low battery)"),
        (0x80, "0(low battery)"),
        (0xFF, "12.7(low battery)"),
    ],
)
def test_low_battery_volt_is_text_in_shortest_form(battery: int, volt: str) -> None:
    frame = f"0134{1:02x}{battery:02x}01012c0107320a"
    assert decode_hex("netvox/r718x", 6, frame)[0]["Volt"] == volt
    assert get("netvox/r718x").decode_row(6, bytes.fromhex(frame))["Volt"] == volt


def test_r718pe_status_has_fill_level_from_b7_and_no_temperature() -> None:
    (obj,) = decode_hex("netvox/r718x", 6, "01b1012400012c32000000")
    assert obj == {"Device": "R718PE", "Volt": 3.6, "Status": "OFF", "Distance": 300, "FillLevel": 50}


def test_unknown_device_type_omits_device() -> None:
    (obj,) = decode_hex("netvox/r719a", 7, "8100000000000000000000")
    assert obj == {"Cmd": "ConfigReportRsp", "Status": "Success"}


def test_negative_temperature_and_version_datecode() -> None:
    status, version = decode_hex("netvox/r718x", 6, "0134012401012cff9c320a", "0134006401202312310000")
    assert status["Temp"] == -10.0
    assert version["Datecode"] == "20231231"


def test_short_frame_and_unknown_port_are_row_errors() -> None:
    codec = get("netvox/r718x")
    payloads = [bytes.fromhex("013401"), bytes.fromhex("0134012401012c0107320a")]
    offsets = np.array([0, 3, 14])
    decoded = codec.decode(np.array([6, 8]), np.frombuffer(b"".join(payloads), np.uint8), offsets)
    assert decoded.ok.tolist() == [False, False]
    assert decoded.error.tolist() == ["wrong length: 3 bytes, expected 11", "unknown FPort"]


def test_r718x_domain_fill_from_bin_depth_else_device_fill_level() -> None:
    codec = get("netvox/r718x")
    # distances 300 and 900 mm, device fill levels 50 and 10 %, battery 3.6 V and low-battery 3.2 V
    hexes = ["0134012401012c0107320a", "013401a0010384010a0a0a"]
    payloads = [bytes.fromhex(h) for h in hexes]
    decoded = codec.decode(np.array([6, 6]), np.frombuffer(b"".join(payloads), np.uint8), np.array([0, 11, 22]))
    q = codec.domain(decoded, {"depth_mm": np.array([1300.0, np.nan]), "full_mm": np.array([300.0, np.nan])})
    assert q["distance_mm"].values.tolist() == [300.0, 900.0]
    assert q["fill_pct"].present.tolist() == [True, True]
    assert q["fill_pct"].values.tolist() == [100.0, 10.0]  # (1300-300)/(1300-300); second row: device's own
    assert q["temperature_c"].values.tolist() == [26.3, 26.6]
    assert q["battery_v"].values.tolist() == [3.6, 3.2]


def test_r719a_domain_occupied_only_for_status_reports() -> None:
    codec = get("netvox/r719a")
    payloads = [
        bytes.fromhex(h) for h in ("0159011e01000000000000", "0159011e00000000000000", "015900640b202004240000")
    ]
    decoded = codec.decode(np.array([6, 6, 6]), np.frombuffer(b"".join(payloads), np.uint8), np.array([0, 11, 22, 33]))
    occupied = codec.domain(decoded, {})["occupied"]
    assert occupied.present.tolist() == [True, True, False]
    assert occupied.values[:2].tolist() == [True, False]


def test_encode_rejects_values_the_frame_cannot_hold() -> None:
    codec = get("netvox/r718x")
    with pytest.raises(EncodeError) as info:
        codec.encode(6, {"Volt": np.array([13.0]), "Distance": np.array([100])})
    assert info.value.field == "Volt"
    with pytest.raises(EncodeError) as info:
        codec.encode(6, {"Volt": np.array([3.6]), "Distance": np.array([70000])})
    assert info.value.field == "Distance"
