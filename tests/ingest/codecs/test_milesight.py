"""Milesight EM310-UDL and VS133: record parsing rules, rejected frames, encoder checks, domain mapping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stadtpuls.ingest.codecs import EncodeError, get


def decode_hex(cid: str, *hexes: str) -> tuple[list[Any], list[Any]]:
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    decoded = get(cid).decode(np.full(len(payloads), 85), np.frombuffer(b"".join(payloads), np.uint8), offsets)
    return decoded.objects(), decoded.error.tolist()


def test_em310_stops_at_first_unknown_channel_and_keeps_fields_read_so_far() -> None:
    objects, _ = decode_hex("milesight-iot/em310-udl", "01755c" + "ff0bff" + "03824408", "ff0bff", "")
    assert objects == [{"battery": 92}, {}, {}]


def test_em310_repeated_record_overwrites_earlier_value() -> None:
    objects, _ = decode_hex("milesight-iot/em310-udl", "017501" + "03821000" + "017563" + "040000")
    assert objects == [{"battery": 99, "distance": 16, "tilt": "normal"}]


def test_em310_tilt_is_tilt_for_any_nonzero_byte() -> None:
    objects, _ = decode_hex("milesight-iot/em310-udl", "040002", "040000")
    assert objects == [{"tilt": "tilt"}, {"tilt": "normal"}]


def test_em310_truncated_frames_are_rejected_with_reason() -> None:
    objects, errors = decode_hex("milesight-iot/em310-udl", "01755c038244", "01755c03", "01755c")
    assert objects[:2] == [None, None]
    assert errors[0] == "truncated record: channel 0x03 type 0x82 needs 2 value bytes"
    assert errors[1] == "truncated record header: 1 byte left where channel and type need 2"
    assert objects[2] == {"battery": 92} and errors[2] is None


def test_vs133_line_channel_with_wrong_type_stops_parsing() -> None:
    objects, _ = decode_hex("milesight-iot/vs133", "03d201000000" + "04cc02000000")
    assert objects == [{"line_1": {"total_in": 1}}]


def test_vs133_nests_only_the_lines_and_keys_present() -> None:
    objects, _ = decode_hex("milesight-iot/vs133", "0bcc0500ffff" + "0dd2ffffffff")
    assert objects == [{"line_3": {"period_in": 5, "period_out": 65535}, "line_4": {"total_out": 4294967295}}]


def test_em310_domain_fill_from_bin_depth_and_full_level() -> None:
    codec = get("milesight-iot/em310-udl")
    buf, offsets = codec.encode(85, {"battery": [80, 80, 80, 80], "distance": [1100, 2500, 100, 1100]})
    decoded = codec.decode(np.full(4, 85), buf, offsets)
    params = {
        "depth_mm": np.array([2000.0, 2000.0, 2000.0, np.nan]),
        "full_mm": np.array([200.0, 200, 200, 200]),
    }
    dom = codec.domain(decoded, params)
    assert dom["distance_mm"].values.tolist() == [1100, 2500, 100, 1100]
    assert dom["fill_pct"].present.tolist() == [True, True, True, False]
    assert dom["fill_pct"].values[:3].tolist() == [50.0, 0.0, 100.0]
    assert dom["battery_pct"].values.tolist() == [80] * 4


def test_em310_domain_has_no_fill_without_distance_or_for_failed_rows() -> None:
    codec = get("milesight-iot/em310-udl")
    payloads = [bytes.fromhex("01755c"), bytes.fromhex("01755c0382")]
    decoded = codec.decode(np.full(2, 85), np.frombuffer(b"".join(payloads), np.uint8), np.array([0, 3, 8]))
    dom = codec.domain(decoded, {"depth_mm": np.array([2000.0, 2000.0])})
    assert dom["fill_pct"].present.tolist() == [False, False]
    assert dom["battery_pct"].present.tolist() == [True, False]


def test_vs133_domain_sums_period_counts_over_lines() -> None:
    codec = get("milesight-iot/vs133")
    objects_hex = ["05cc03000200" + "08cc04000100", "03d205000000", "0bcc01000000"]
    payloads = [bytes.fromhex(h) for h in objects_hex]
    offsets = np.zeros(4, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    decoded = codec.decode(np.full(3, 85), np.frombuffer(b"".join(payloads), np.uint8), offsets)
    dom = codec.domain(decoded, {})
    assert dom["pax_in"].present.tolist() == [True, False, True]
    assert dom["pax_in"].values[[0, 2]].tolist() == [7.0, 1.0]
    assert dom["pax_out"].values[[0, 2]].tolist() == [3.0, 0.0]


def test_em310_encode_rejects_values_the_format_cannot_hold() -> None:
    codec = get("milesight-iot/em310-udl")
    with pytest.raises(EncodeError) as exc:
        codec.encode(85, {"battery": [256]})
    assert exc.value.field == "battery"
    with pytest.raises(EncodeError) as exc:
        codec.encode(85, {"tilt": np.array(["upside down"], dtype=object)})
    assert exc.value.field == "tilt"
    with pytest.raises(EncodeError) as exc:
        codec.encode(85, {"height": [1]})
    assert exc.value.field == "height"


def test_vs133_encode_needs_both_period_counts_of_a_line() -> None:
    with pytest.raises(EncodeError) as exc:
        get("milesight-iot/vs133").encode(85, {"line_2.period_in": [3]})
    assert exc.value.field == "line_2.period_out"


def test_em310_encodes_the_canonical_record_set_in_table_order() -> None:
    buf, offsets = get("milesight-iot/em310-udl").encode(85, {"tilt": ["tilt"], "distance": [2116], "battery": [92]})
    assert bytes(buf).hex() == "01755c03824408040001" and offsets.tolist() == [0, 10]
