"""Vectorised message generation for load runs: random but plausible readings for every device model, encoded a
whole array at a time, and per-device message templates into which the per-message values are formatted.

A template is the device's real envelope (from :mod:`simulators.uplinks`) serialised once with placeholders
for the values that change per message; filling it is one ``%`` formatting per message.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import orjson

from stadtpuls.ingest.codecs import get

from .city import City, Device, Gateway
from .sessions import Session
from .uplinks import Network, Stamps, UplinkFacts, chirpstack_uplink, tts_uplink

__all__ = ["CS_FIELDS", "NUMERIC", "TTS_FIELDS", "Template", "encode_random", "make_template", "random_fields"]

NUMERIC = ("f_port", "f_cnt", "gw_ts", "rssi", "snr", "channel", "frequency", "uplink_id")
#: A numeric slot replaces its quoted mark; a string slot only the mark inside its quotes.
_SLOT = re.compile(b'"@@(' + "|".join(NUMERIC).encode() + b')@@"|@@(\\w+)@@')
TTS_FIELDS = (
    "cid_as",
    "cid_ns",
    "as_time",
    "f_port",
    "f_cnt",
    "payload",
    "gw_time",
    "gw_ts",
    "rssi",
    "snr",
    "channel",
    "ns_time",
    "airtime",
    "frequency_text",
)
CS_FIELDS = (
    "dedup",
    "ns_time",
    "f_cnt",
    "f_port",
    "payload",
    "uplink_id",
    "rssi",
    "snr",
    "channel",
    "frequency",
    "later",
)


def random_fields(key: str, n: int, rng: np.random.Generator) -> tuple[int, dict[str, Any]]:
    """(fPort, encode() input) of n random readings of a device model."""
    u = rng.random
    if key == "em310-udl":
        return 85, {
            "battery": rng.integers(60, 101, n),
            "distance": rng.integers(150, 1400, n),
            "tilt": np.full(n, "normal"),
        }
    if key == "r718x":
        return 6, {
            "Volt": np.round(3.3 + 0.3 * u(n), 1),
            "Distance": rng.integers(150, 1400, n),
            "Temp": np.round(5 + 15 * u(n), 1),
            "FillLevel": rng.integers(0, 101, n),
            "AngleOfInclination": rng.integers(0, 4, n),
        }
    if key == "wilsen":
        return 1, {
            "proxx_mm": rng.integers(150, 1600, n),
            "fillinglvl": rng.integers(0, 101, n),
            "temp": np.round(5 + 15 * u(n), 1),
            "battery_vol": np.round(3.4 + 0.2 * u(n), 1),
        }
    if key == "nps405":
        return 1, {"occupied": u(n) < 0.5, "previous_state_duration": rng.integers(0, 600, n)}
    if key == "tps110":
        return 1, {"occupied": u(n) < 0.5}
    if key == "r719a":
        return 6, {"Volt": np.round(3.4 + 0.2 * u(n), 1), "CarOnOff": rng.integers(0, 2, n)}
    if key == "vs133":
        return 85, {
            "line_1.total_in": rng.integers(1000, 90000, n),
            "line_1.total_out": rng.integers(1000, 90000, n),
            "line_1.period_in": rng.integers(0, 15, n),
            "line_1.period_out": rng.integers(0, 15, n),
        }
    if key == "paxcounter":
        return 1, {
            "wifi": rng.integers(0, 60, n),
            "ble": rng.integers(0, 40, n),
            "latitude": np.round(51.30 + 0.08 * u(n), 6),
            "longitude": np.round(12.30 + 0.14 * u(n), 6),
            "sats": rng.integers(5, 13, n),
            "hdop": np.round(0.7 + u(n), 2),
            "altitude": rng.integers(100, 130, n),
        }
    if key == "ers":
        return 5, {
            "temperature": np.round(19 + 4 * u(n), 1),
            "humidity": rng.integers(25, 60, n),
            "light": rng.integers(0, 800, n),
            "motion": rng.integers(0, 20, n),
            "vdd": rng.integers(3500, 3680, n),
        }
    if key == "lht65":
        return 2, {
            "BatV": np.round(3.0 + 0.1 * u(n), 3),
            "Bat_status": np.full(n, 3),
            "TempC_SHT": np.round(-5 + 30 * u(n), 2),
            "Hum_SHT": np.round(30 + 60 * u(n), 1),
            "Ext_sensor": np.full(n, "No external sensor"),
        }
    raise ValueError(f"no load generator for {key!r}")


def encode_random(city: City, dev: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[bytes]]:
    """Random readings for the devices ``dev`` (indices), encoded per model in one call: (fPort, payloads)."""
    n = len(dev)
    ports = np.zeros(n, dtype=np.int64)
    payloads: list[bytes] = [b""] * n
    keys = np.array([d.model.key for d in city.devices])[dev]
    for key in np.unique(keys).tolist():
        rows = np.flatnonzero(keys == key)
        port, fields = random_fields(key, len(rows), rng)
        buf, offsets = get(city.devices[int(dev[rows[0]])].model.codec).encode(port, fields)
        raw = buf.tobytes()
        off = offsets.tolist()
        ports[rows] = port
        for j, r in enumerate(rows.tolist()):
            payloads[r] = raw[off[j] : off[j + 1]]
    return ports, payloads


class Template:
    """A device's envelope (bytes) with ``%s`` slots for the per-message values, in ``names`` order. String values
    go inside the template's quotes, so every value is plain bytes without JSON quoting."""

    def __init__(self, text: bytes, names: list[str]) -> None:
        self.text = text
        self.names = names


def make_template(net: Network, device: Device, session: Session, gateway: Gateway, sf: int) -> Template:
    tts = device.lns == "tts"
    mark = {name: f"@@{name}@@" for name in (TTS_FIELDS if tts else CS_FIELDS)}
    z = "Z" if tts else "+00:00"
    facts = UplinkFacts(
        device,
        session,
        1,
        1,
        b"\0",
        0,
        sf,
        868_100_000,
        1,
        0,
        [(gateway, -100.0, 5.0)],
        mark.get("dedup", ""),
        ["", "", "", "", ""],
        ["AAAAAA=="],
        [0],
        Stamps(
            mark["ns_time"] + z,
            mark.get("gw_time", "") + z,
            mark.get("gw_time", "") + z,
            mark.get("as_time", mark.get("later", "")) + z,
        ),
    )
    if tts:
        body = tts_uplink(net, facts)
        up = body["uplink_message"]
        body["correlation_ids"] = ["as:up:" + mark["cid_as"], "ns:uplink:" + mark["cid_ns"]]
        up.update(
            f_port=mark["f_port"],
            f_cnt=mark["f_cnt"],
            frm_payload=mark["payload"],
            consumed_airtime=mark["airtime"] + "s",
        )
        rx = up["rx_metadata"][0]
        rx.update(
            timestamp=mark["gw_ts"],
            rssi=mark["rssi"],
            channel_rssi=mark["rssi"],
            snr=mark["snr"],
            channel_index=mark["channel"],
        )
        rx.pop("uplink_token", None)
        up["settings"].update(frequency=mark["frequency_text"], timestamp=mark["gw_ts"])
    else:
        body = chirpstack_uplink(net, facts)
        body.update(fCnt=mark["f_cnt"], fPort=mark["f_port"], data=mark["payload"])
        rx = body["rxInfo"][0]
        rx.update(uplinkId=mark["uplink_id"], rssi=mark["rssi"], snr=mark["snr"], channel=mark["channel"])
        body["txInfo"]["frequency"] = mark["frequency"]
    text = orjson.dumps(body).replace(b"%", b"%%")
    names: list[str] = []

    def slot(m: re.Match[bytes]) -> bytes:
        names.append((m.group(1) or m.group(2)).decode())
        return b"%s"

    return Template(_SLOT.sub(slot, text), names)
