"""Nwave NPS405: rules beyond the public vectors, and the domain mapping."""

from __future__ import annotations

import numpy as np
import pytest

from stadtpuls.ingest.codecs import get


def decode(port: int, *hexes: str):
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in payloads])])
    return get("nwave/nps405").decode(
        np.full(len(payloads), port), np.frombuffer(b"".join(payloads), np.uint8), offsets
    )


@pytest.mark.parametrize(
    ("tag", "text"),
    [("1f345678", "1F345678"), ("000abcde", "ABCDE"), ("80000001", "-7FFFFFFF"), ("80000000", "-80000000")],
)
def test_tag_id_is_signed_hex_without_padding(tag: str, text: str) -> None:
    assert decode(10, "d1" + tag).objects()[0]["tag_id"] == text


def test_registration_without_occupancy_has_nulls() -> None:
    (obj,) = decode(10, "0000000001").objects()
    assert obj == {
        "type": "user_registration",
        "occupied": None,
        "previous_state_duration": None,
        "previous_state_duration_error": None,
        "previous_state_duration_overflow": None,
        "tag_id": "1",
    }


@pytest.mark.parametrize("others", [[], [(1, "00"), (2, "000000")]])
def test_registration_nulls_stay_on_registration_rows(others: list[tuple[int, str]]) -> None:
    """Registrations share the status frames' whole-batch occupancy and duration columns; their nulls (no
    occupancy) must not reach a startup frame's occupancy, with or without status frames in the batch."""
    rows = [(10, "0000000001"), (3, "0000000000"), (10, "0300000002"), *others]
    payloads = [bytes.fromhex(h) for _, h in rows]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in payloads])])
    codec = get("nwave/nps405")
    port = np.array([p for p, _ in rows])
    objs = codec.decode(port, np.frombuffer(b"".join(payloads), np.uint8), offsets).objects()
    assert objs == [codec.decode_row(p, b) for (p, _), b in zip(rows, payloads, strict=True)]
    assert objs[1]["occupied"] is False and objs[0]["occupied"] is None and objs[2]["occupied"] is True
    assert objs[2]["previous_state_duration"] == 1


def test_overflowing_duration_has_null_error() -> None:
    (obj,) = decode(1, "ff").objects()
    assert obj["previous_state_duration"] == 660
    assert obj["previous_state_duration_error"] is None
    assert obj["previous_state_duration_overflow"] is True


def test_battery_health_thresholds_depend_on_temperature() -> None:
    # 2996 mV ("low" when warm), 2896 mV at -10 degC ("low" when cold), 2796 mV when cold ("critical")
    objs = decode(2, "007c00000000", "0063d8000000", "004ad8000000").objects()
    assert [o["battery_health"] for o in objs] == ["low", "low", "critical"]


def test_other_ports_decode_to_empty_object_and_short_frames_fail() -> None:
    assert decode(99, "0102").objects() == [{}]
    decoded = decode(3, "0204")
    assert decoded.objects() == [None] and decoded.error[0] == "wrong length: 2 bytes, expected at least 5"


def test_domain_maps_occupancy_battery_and_temperature() -> None:
    decoded = decode(2, "01d3d800590b")
    q = get("nwave/nps405").domain(decoded, {})
    assert q["occupied"].values.tolist() == [True]
    assert q["battery_v"].values.tolist() == [3.344]
    assert q["temperature_c"].values.tolist() == [-10.0]
    nulls = get("nwave/nps405").domain(decode(10, "0000000001"), {})
    assert nulls["occupied"].present.tolist() == [False]


def test_every_compressed_duration_decodes_as_the_per_message_reference() -> None:
    payloads = [bytes([c << 1 | 1]) for c in range(128)]
    decoded = get("nwave/nps405").decode(
        np.ones(128, dtype=np.int64), np.frombuffer(b"".join(payloads), np.uint8), np.arange(129)
    )
    assert decoded.objects() == [get("nwave/nps405").decode_row(1, p) for p in payloads]
