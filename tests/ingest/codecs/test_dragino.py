"""Dragino LHT65: the external sensor modes beyond the public vectors, and the domain mapping."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.codecs import get


def decode(*hexes: str, port: int = 2):
    payloads = [bytes.fromhex(h) for h in hexes]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in payloads])])
    return get("dragino/lht65").decode(
        np.full(len(payloads), port), np.frombuffer(b"".join(payloads), np.uint8), offsets
    )


def test_probe_id_mode_has_no_internal_readings_and_a_spaced_id() -> None:
    (obj,) = decode("cbf628ff641e0f91600430").objects()
    assert obj == {"BatV": 3.062, "Bat_status": 3, "Work_mode": "DS18B20ID", "ID": "28 ff 64 1e 91 60 04 30 "}


def test_timestamp_mode_reads_probe_from_first_bytes_and_battery_status_from_b4() -> None:
    (obj,) = decode("fc180b0dc37609605fb3a2").objects()
    assert obj["TempC_DS"] == -10.0 and obj["Bat_status"] == 3 and "BatV" not in obj
    assert obj["Systimestamp"] == 0x605FB3A2 and obj["Work_mode"] == "DS18B20 & timestamp"


def test_no_connection_flag_and_signed_count() -> None:
    (obj,) = decode("cbf60b0d037688ffffffff").objects()
    assert obj["No_connect"] == "Sensor no connection"
    assert obj["Exit_count"] == -1


def test_poll_reply_and_wrong_length_fail_with_reasons() -> None:
    decoded = decode("cbf60b0d0376410add7fff", "cbf60b0d0376010add7f")
    assert decoded.objects() == [None, None]
    assert decoded.error[0].startswith("poll message")
    assert decoded.error[1] == "wrong length: 10 bytes, expected 11"


def test_domain_prefers_internal_temperature_and_falls_back_to_probe() -> None:
    decoded = decode("cbf60b0d0376010add7fff", "cbf628ff641e0f91600430")
    q = get("dragino/lht65").domain(decoded, {})
    assert q["temperature_c"].values[0] == 28.29
    assert q["temperature_c"].present.tolist() == [True, False]
    assert q["humidity_pct"].values[0] == 88.6
    assert q["battery_v"].values.tolist() == [3.062, 3.062]
