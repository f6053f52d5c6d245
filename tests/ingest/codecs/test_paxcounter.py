"""ESP32-Paxcounter: layouts chosen by fPort and length, int32 folding, the lazy ``bytes`` column, encoder
layout choice, domain mapping."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from stadtpuls.ingest.codecs import EncodeError, get
from stadtpuls.ingest.codecs.raw_columns import RawColumn

CID = "opensource/esp32-paxcounter"


def decode_rows(*rows: tuple[int, str]) -> tuple[list[Any], list[Any], Any]:
    payloads = [bytes.fromhex(h) for _, h in rows]
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    ports = np.array([p for p, _ in rows], dtype=np.int64)
    decoded = get(CID).decode(ports, np.frombuffer(b"".join(payloads), np.uint8), offsets)
    return decoded.objects(), decoded.error.tolist(), decoded


def test_lengths_without_a_layout_give_bytes_and_port_only() -> None:
    objects, _, _ = decode_rows((1, "010203"), (2, "00" * 19), (9, "010203"), (6, "0a0b"))
    assert objects == [
        {"bytes": [1, 2, 3], "port": 1, "pax": 0},
        {"bytes": [0] * 19, "port": 2},
        {"bytes": [1, 2, 3], "port": 9},
        {"bytes": [10, 11], "port": 6},
    ]


def test_frames_shorter_than_their_layout_are_rejected() -> None:
    objects, errors, _ = decode_rows((3, "00" * 20), (4, "00" * 9), (7, "0834"), (5, ""))
    assert objects == [None] * 4
    assert errors == [
        "fPort 3 frame needs at least 21 bytes, got 20",
        "fPort 4 frame needs 8 or at least 13 bytes, got 9",
        "fPort 7 frame needs at least 8 bytes, got 2",
        "fPort 5 frame needs at least 1 bytes, got 0",
    ]


def test_longer_frames_read_their_leading_bytes() -> None:
    objects, _, _ = decode_rows((5, "0102"), (8, "2f01ff"))
    assert objects == [
        {"bytes": [1, 2], "port": 5, "button": 1},
        {"bytes": [47, 1, 255], "port": 8, "voltage": 303},
    ]


def test_counters_with_gps_and_pax_sum() -> None:
    # wifi 7, ble 3, lat 50.776677, lon 7.280901, sats 5, hdop 1.98, altitude -2
    objects, _, _ = decode_rows((1, "0700" + "0300" + "65ca0603" + "05196f00" + "05" + "c600" + "feff"))
    obj = objects[0]
    assert obj["pax"] == 10 and obj["latitude"] == 50.776677 and obj["longitude"] == 7.280901
    assert (obj["sats"], obj["hdop"], obj["altitude"]) == (5, 1.98, -2)


def test_uint32_fields_and_uptime_fold_to_signed_32_bits() -> None:
    # uptime: low word 0x00000001 ORed with high word 0x80000000 -> 0x80000001 as int32
    status = "2f01" + "01000000" + "00000080" + "2d" + "00000080" + "01" + "ffffffff"
    objects, _, _ = decode_rows((2, status), (9, "ffffffff07"), (2, "2f01" + "ffff0000" + "0000ffff" + "00" * 10))
    assert objects[0]["uptime"] == -(2**31) + 1
    assert objects[0]["memory"] == -(2**31) and objects[0]["restarts"] == -1
    assert objects[1]["time"] == -1 and objects[1]["timestatus"] == 7
    assert objects[2]["uptime"] == -1


def test_config_flags_and_version_up_to_first_nul() -> None:
    config = "05" + "0e" + "b0ff" + "1e" + "0a" + "03" + "e803" + "b6" + "81" + "312e322e3300787878" + "78"
    objects, _, _ = decode_rows((3, config + "ee"))
    obj = objects[0]
    assert obj["rssilimit"] == -80 and obj["sleepcycle"] == 1000 and obj["version"] == "1.2.3"
    # 0xb6 = 1011 0110: adr, screen, countermode, antenna; bit 1 is not reported
    assert obj["flags"] == {
        "adr": 1,
        "screensaver": 0,
        "screen": 1,
        "countermode": 1,
        "blescan": 0,
        "antenna": 1,
        "reserved": 0,
    }
    assert obj["payloadmask"] == {
        "battery": 1,
        "sensor3": 0,
        "sensor2": 0,
        "sensor1": 0,
        "gps": 0,
        "bme": 0,
        "reserved": 0,
        "counter": 1,
    }
    assert len(obj["bytes"]) == 22


def test_bytes_column_is_built_when_read() -> None:
    _, _, decoded = decode_rows((1, "0700"), (10, "0102"), (3, "00"))
    col = decoded.columns["bytes"]
    assert isinstance(col, RawColumn)
    assert col.present.tolist() == [True, True, False]
    assert col.values[0] == [7, 0] and col.values[1] == [1, 2]


def test_encode_chooses_the_layout_from_the_fields_given() -> None:
    codec = get(CID)
    buf, offsets = codec.encode(1, {"latitude": [50.776677], "longitude": [7.280901], "wifi": [7]})
    assert offsets.tolist() == [0, 10] and bytes(buf).hex() == "65ca0603" + "05196f00" + "0700"
    buf, offsets = codec.encode(9, {"timesync_seqno": 3})
    assert bytes(buf).hex() == "03" and offsets.tolist() == [0, 1]
    with pytest.raises(EncodeError):
        codec.encode(1, {"wifi": [1], "sats": [3]})
    with pytest.raises(EncodeError) as exc:
        codec.encode(1, {"wifi": [1], "pax": [1]})
    assert exc.value.field == "pax"
    with pytest.raises(EncodeError) as exc:
        codec.encode(8, {"voltage": [70000]})
    assert exc.value.field == "voltage"


def test_domain_counts_people_only_from_counter_frames() -> None:
    _, _, decoded = decode_rows((1, "07000300"), (1, "0102"), (7, "08341027401f1027"), (8, "2f01"), (1, "00"))
    dom = get(CID).domain(decoded, {})
    assert dom["pax_count"].present.tolist() == [True, True, False, False, False]
    assert dom["pax_count"].values[:2].tolist() == [10.0, 513.0]
    assert dom["temperature_c"].present.tolist() == [False, False, True, False, False]
    assert dom["temperature_c"].values[2] == 21.0 and dom["humidity_pct"].values[2] == 80.0
    assert dom["battery_v"].present.tolist() == [False, False, False, True, False]
    assert dom["battery_v"].values[3] == 0.303
