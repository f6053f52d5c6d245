"""Load generation: random but plausible readings for every device model, encoded a whole array at a time, and
two ways to turn them into network-server messages.

* Load mode (:mod:`simulators.load`): per-device message templates into which the per-message values are formatted.
  A template is the device's real envelope (from :mod:`simulators.uplinks`) serialised once with placeholders for
  the values that change per message; filling it is one ``%`` formatting per message.
* A small load fleet for load tests, fault drills and the ingest benchmark: :func:`make_fleet` declares devices
  of four kinds (bins with a Milesight EM310-UDL, parking spaces with an Nwave NPS405, buses with a Milesight
  VS133, environment stations with an Elsys ERS), half behind The Things Stack and half behind ChirpStack v4;
  :meth:`LoadFleet.yaml` is its registry file. :func:`make_uplinks` gives n uplinks round-robin over the devices
  with consecutive frame counters and real payload bytes (:mod:`simulators.messages` writes the envelopes);
  :func:`make_garbage` gives bad messages of the kinds the hub must dead-letter. Deterministic for a seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from stadtpuls.ingest.codecs import get

from . import messages
from .catalog import MODELS
from .city import City, Device, Gateway
from .sessions import Session
from .uplinks import Network, Stamps, UplinkFacts, chirpstack_uplink, tts_uplink

__all__ = [
    "CS_FIELDS",
    "GARBAGE_KINDS",
    "NUMERIC",
    "TTS_FIELDS",
    "LoadDevice",
    "LoadFleet",
    "Template",
    "encode_random",
    "make_fleet",
    "make_garbage",
    "make_template",
    "make_uplinks",
    "random_fields",
]

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


_APP_UUID = "7b0a5c1e-3f7d-4a8e-9c55-2c1a6b0e9d11"
_KINDS = (
    ("bin", "milesight-iot/em310-udl", 85),
    ("space", "nwave/nps405", 1),
    ("vehicle", "milesight-iot/vs133", 85),
    ("station", "elsys/ers", 5),
)
GARBAGE_KINDS = ("random bytes", "truncated JSON", "unknown device", "wrong payload size")


@dataclass(frozen=True)
class LoadDevice:
    dev_eui: str
    codec: str
    kind: str
    site_id: str
    f_port: int
    lns: str  # "tts" | "chirpstack"

    @property
    def device_id(self) -> str:
        return f"load-{self.dev_eui}"


@dataclass
class LoadFleet:
    devices: list[LoadDevice]

    def yaml(self) -> str:
        """The fleet as a registry file (``stadtpuls devices import``)."""
        lines = [
            "sites:",
            "  - {site_id: load-lot, kind: lot, capacity: 100000}",
            "  - {site_id: load-line, kind: line}",
        ]
        for d in self.devices:
            extra = {
                "bin": ", depth_mm: 1200, full_mm: 200",
                "space": ", parent_id: load-lot",
                "vehicle": ", parent_id: load-line, capacity: 80",
            }.get(d.kind, "")
            lines.append(f"  - {{site_id: {d.site_id}, kind: {d.kind}{extra}}}")
        lines.append("devices:")
        for d in self.devices:
            lid = f", lns_device_id: {d.device_id}" if d.lns == "tts" else ""
            lines.append(f'  - {{dev_eui: "{d.dev_eui}", codec: {d.codec}, site_id: {d.site_id}{lid}}}')
        return "\n".join(lines) + "\n"


def make_fleet(n_devices: int = 200, *, prefix: int = 0x70) -> LoadFleet:
    devices = []
    for i in range(n_devices):
        kind, codec, port = _KINDS[i % len(_KINDS)]
        eui = f"{prefix:02x}{i:014x}"
        devices.append(LoadDevice(eui, codec, kind, f"load-{kind}-{i}", port, "tts" if i % 2 else "chirpstack"))
    return LoadFleet(devices)


_KEY_BY_CODEC = {m.codec: m.key for m in MODELS.values()}


def _payloads(codec_id: str, n: int, rng: np.random.Generator) -> list[bytes]:
    """n random readings of the codec's device model (:func:`random_fields`), encoded in one call."""
    port, cols = random_fields(_KEY_BY_CODEC[codec_id], n, rng)
    buf, off = get(codec_id).encode(port, cols)
    raw = buf.tobytes()
    return [raw[off[i] : off[i + 1]] for i in range(n)]


def _message(d: LoadDevice, when: datetime, f_cnt: int, payload: bytes) -> tuple[str, bytes]:
    if d.lns == "tts":
        msg = messages.tts_uplink(
            device_id=d.device_id,
            app_id="load",
            received_at=when,
            f_port=d.f_port,
            payload=payload,
            f_cnt=f_cnt,
            dev_eui=d.dev_eui,
            session_key_id="AAECAwQFBgcICQoLDA0ODw==",
        )
        return messages.tts_topic("load", d.device_id, tenant="ttn"), orjson.dumps(msg)
    msg = messages.chirpstack_uplink(
        dev_eui=d.dev_eui, application_id=_APP_UUID, time=when, f_port=d.f_port, payload=payload, f_cnt=f_cnt
    )
    return messages.chirpstack_topic(_APP_UUID, d.dev_eui), orjson.dumps(msg)


def make_uplinks(
    fleet: LoadFleet,
    n: int,
    *,
    seed: int = 1,
    start: datetime | None = None,
    first_f_cnt: int = 1,
    step: timedelta = timedelta(milliseconds=10),
) -> list[tuple[str, bytes]]:
    """n distinct uplinks (topic, message), round-robin over the fleet, frame counters counting up per device."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
    k = len(fleet.devices)
    payloads: dict[int, list[bytes]] = {}
    for j, d in enumerate(fleet.devices):
        count = len(range(j, n, k))
        if count:
            payloads[j] = _payloads(d.codec, count, rng)
    out = []
    for i in range(n):
        j, round_ = i % k, i // k
        out.append(_message(fleet.devices[j], start + i * step, first_f_cnt + round_, payloads[j][round_]))
    return out


def _wrong_size(d: LoadDevice, rng: np.random.Generator) -> tuple[int, bytes]:
    """An fPort and a non-empty payload of a length the device's codec rejects there."""
    codec = get(d.codec)
    valid = _payloads(d.codec, 1, rng)[0]
    for port in (d.f_port, *codec.f_ports):
        for raw in (valid[:-1], valid[:-2], valid + b"\x00", valid[:1], valid + b"\x00\x00\x00"):
            if not raw:
                continue
            dec = codec.decode(np.array([port]), np.frombuffer(raw, np.uint8), np.array([0, len(raw)]))
            if not dec.ok[0]:
                return port, raw
    raise ValueError(f"no rejected payload length found for {d.codec}")


def make_garbage(
    fleet: LoadFleet, n: int, *, seed: int = 2, start: datetime | None = None
) -> list[tuple[str, bytes, str]]:
    """n distinct bad messages (topic, message, kind), cycling through GARBAGE_KINDS."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 2, 1, 6, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        kind = GARBAGE_KINDS[i % len(GARBAGE_KINDS)]
        d = fleet.devices[(i // len(GARBAGE_KINDS) + i) % len(fleet.devices)]
        when = start + timedelta(milliseconds=7 * i)
        if kind == "random bytes":
            topic, msg = messages.chirpstack_topic(_APP_UUID, d.dev_eui), b"\x80" + rng.bytes(int(rng.integers(8, 200)))
        elif kind == "truncated JSON":
            topic, full = _message(d, when, 900_000 + i, b"\x01")
            msg = full[: int(rng.integers(len(full) // 2, len(full) - 1))]  # past the ids: every cut distinct
        elif kind == "unknown device":
            stranger = LoadDevice(f"ee{i:014x}", d.codec, d.kind, "", d.f_port, d.lns)
            topic, msg = _message(stranger, when, i + 1, _payloads(d.codec, 1, rng)[0])
        else:
            port, raw = _wrong_size(d, rng)
            topic, msg = _message(replace(d, f_port=port), when, 900_000 + i, raw)
        out.append((topic, msg, kind))
    return out
