"""Synthetic uplink streams of a small fleet, in the real network-server formats, for load tests, fault drills and
the ingest benchmark.

:func:`make_fleet` declares devices of four kinds (bins with a Milesight EM310-UDL, parking spaces with an Nwave
NPS405, buses with a Milesight VS133, environment stations with an Elsys ERS), half behind The Things Stack and
half behind ChirpStack v4; :meth:`LoadFleet.yaml` is its registry file. :func:`make_uplinks` gives n uplinks
round-robin over the devices with consecutive frame counters and real payload bytes from the codecs' encoders;
:func:`make_garbage` gives bad messages of the kinds the hub must dead-letter. Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

from stadtpuls.ingest.codecs import get

from .messages import chirpstack_topic, chirpstack_uplink, tts_topic, tts_uplink

__all__ = ["GARBAGE_KINDS", "LoadDevice", "LoadFleet", "make_fleet", "make_garbage", "make_uplinks"]

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


def _payloads(codec_id: str, f_port: int, n: int, rng: np.random.Generator) -> list[bytes]:
    codec = get(codec_id)
    cols: dict[str, np.ndarray]
    if codec_id == "milesight-iot/em310-udl":
        cols = {"battery": rng.integers(20, 100, n), "distance": rng.integers(200, 1200, n)}
    elif codec_id == "nwave/nps405":
        cols = {"occupied": rng.random(n) < 0.5}
    elif codec_id == "milesight-iot/vs133":
        cols = {"line_1.period_in": rng.integers(0, 10, n), "line_1.period_out": rng.integers(0, 10, n)}
    else:
        cols = {
            "temperature": np.round(rng.normal(15, 5, n), 1),
            "humidity": rng.integers(20, 90, n),
            "co2": rng.integers(400, 1500, n),
        }
    buf, off = codec.encode(f_port, cols)
    raw = buf.tobytes()
    return [raw[off[i] : off[i + 1]] for i in range(n)]


def _message(d: LoadDevice, when: datetime, f_cnt: int, payload: bytes) -> tuple[str, bytes]:
    if d.lns == "tts":
        msg = tts_uplink(
            device_id=d.device_id,
            app_id="load",
            received_at=when,
            f_port=d.f_port,
            payload=payload,
            f_cnt=f_cnt,
            dev_eui=d.dev_eui,
            session_key_id="AAECAwQFBgcICQoLDA0ODw==",
        )
        return tts_topic("load", d.device_id, tenant="ttn"), orjson.dumps(msg)
    msg = chirpstack_uplink(
        dev_eui=d.dev_eui, application_id=_APP_UUID, time=when, f_port=d.f_port, payload=payload, f_cnt=f_cnt
    )
    return chirpstack_topic(_APP_UUID, d.dev_eui), orjson.dumps(msg)


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
            payloads[j] = _payloads(d.codec, d.f_port, count, rng)
    out = []
    for i in range(n):
        j, round_ = i % k, i // k
        out.append(_message(fleet.devices[j], start + i * step, first_f_cnt + round_, payloads[j][round_]))
    return out


def _wrong_size(d: LoadDevice, rng: np.random.Generator) -> tuple[int, bytes]:
    """An fPort and a non-empty payload of a length the device's codec rejects there."""
    codec = get(d.codec)
    valid = _payloads(d.codec, d.f_port, 1, rng)[0]
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
    """n bad messages (topic, message, kind), cycling through GARBAGE_KINDS."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 2, 1, 6, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        kind = GARBAGE_KINDS[i % len(GARBAGE_KINDS)]
        d = fleet.devices[(i // len(GARBAGE_KINDS) + i) % len(fleet.devices)]
        when = start + timedelta(milliseconds=7 * i)
        if kind == "random bytes":
            topic, msg = chirpstack_topic(_APP_UUID, d.dev_eui), b"\x80" + rng.bytes(int(rng.integers(1, 200)))
        elif kind == "truncated JSON":
            topic, full = _message(d, when, 900_000 + i, b"\x01")
            msg = full[: int(rng.integers(1, len(full) - 1))]
        elif kind == "unknown device":
            stranger = LoadDevice(f"ee{i:014x}", d.codec, d.kind, "", d.f_port, d.lns)
            topic, msg = _message(stranger, when, i + 1, _payloads(d.codec, d.f_port, 1, rng)[0])
        else:
            port, raw = _wrong_size(d, rng)
            topic, msg = _message(replace(d, f_port=port), when, 900_000 + i, raw)
        out.append((topic, msg, kind))
    return out
