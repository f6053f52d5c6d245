"""Inputs for fuzzing the ingest batch path: a registered fleet with two devices (one behind The Things Stack, one
behind ChirpStack v4) for each of the ten codecs, valid payloads from the shared codec vectors, and hypothesis
strategies for messages good and bad, each tagged with the outcome it must have (or ``None`` when any outcome
is acceptable as long as it is accounted for)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from stadtpuls.ingest.codecs import get
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink, tts_topic, tts_uplink

SHARED = Path(__file__).resolve().parents[1] / "data"
APP_UUID = "3f1c2a9e-0d5b-4c7e-8a61-5b2f9e7d4c10"
KIND_OF = {
    "milesight-iot/em310-udl": "bin",
    "netvox/r718x": "bin",
    "pepperl-fuchs/wilsen-sonic-level": "bin",
    "nwave/nps405": "space",
    "bosch/tps110": "space",
    "netvox/r719a": "space",
    "milesight-iot/vs133": "vehicle",
    "opensource/esp32-paxcounter": "vehicle",
    "elsys/ers": "station",
    "dragino/lht65": "station",
}
CODECS = sorted(KIND_OF)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_F_CNT = count(1)  # unique frame counters: two generated uplinks are never the same message by accident


@dataclass(frozen=True)
class FuzzDevice:
    dev_eui: str
    codec: str
    lns: str  # tts | chirpstack

    @property
    def device_id(self) -> str:
        return f"fz-{self.dev_eui}"


DEVICES = [
    FuzzDevice(f"f{k:01x}{j:01x}000000000{k:02x}{j:02x}", codec, "tts" if j == 0 else "chirpstack")
    for k, codec in enumerate(CODECS)
    for j in range(2)
]


def fleet_yaml() -> str:
    lines = [
        "sites:",
        "  - {site_id: fz-lot, kind: lot, capacity: 100}",
        "  - {site_id: fz-line, kind: line}",
        "  - {site_id: fz-stop, kind: stop, parent_id: fz-line, lat: 51.34, lon: 12.37, seq: 1}",
    ]
    extra = {
        "bin": ", depth_mm: 1200, full_mm: 200",
        "space": ", parent_id: fz-lot",
        "vehicle": ", parent_id: fz-line, capacity: 80",
        "station": "",
    }
    for d in DEVICES:
        kind = KIND_OF[d.codec]
        lines.append(f"  - {{site_id: fz-{d.dev_eui}, kind: {kind}, lat: 51.34, lon: 12.37{extra[kind]}}}")
    lines.append("devices:")
    for d in DEVICES:
        lid = f", lns_device_id: {d.device_id}" if d.lns == "tts" else ""
        lines.append(f'  - {{dev_eui: "{d.dev_eui}", codec: {d.codec}, site_id: fz-{d.dev_eui}{lid}}}')
    return "\n".join(lines) + "\n"


def _valid_vectors() -> dict[str, list[tuple[int, bytes]]]:
    """(fPort, bytes) of each codec's shared vectors that its codec decodes."""
    out: dict[str, list[tuple[int, bytes]]] = {}
    for path in sorted((SHARED / "codec-vectors").glob("*.json")):
        doc = json.loads(path.read_text())
        for v in doc["vectors"]:
            raw = bytes.fromhex(v["bytes_hex"])
            for codec_id in CODECS:
                if path.stem != codec_id.replace("/", "-") or not raw:
                    continue
                dec = get(codec_id).decode(
                    np.array([v["f_port"]]), np.frombuffer(raw, np.uint8), np.array([0, len(raw)])
                )
                if dec.ok[0]:
                    out.setdefault(codec_id, []).append((int(v["f_port"]), raw))
    return out


VECTORS = _valid_vectors()


def envelope(
    d: FuzzDevice, f_port: int, payload: bytes, *, f_cnt: int | None = None, when: datetime | None = None
) -> tuple[str, dict[str, Any]]:
    """A real uplink message of device ``d`` as (topic, JSON document)."""
    f_cnt = next(_F_CNT) if f_cnt is None else f_cnt
    when = when or T0 + timedelta(seconds=f_cnt)
    if d.lns == "tts":
        doc = tts_uplink(
            device_id=d.device_id,
            app_id="fz",
            received_at=when,
            f_port=f_port,
            payload=payload,
            f_cnt=f_cnt,
            dev_eui=d.dev_eui,
            session_key_id="AAECAwQFBgcICQoLDA0ODw==",
        )
        return tts_topic("fz", d.device_id, tenant="city"), doc
    doc = chirpstack_uplink(
        dev_eui=d.dev_eui, application_id=APP_UUID, time=when, f_port=f_port, payload=payload, f_cnt=f_cnt
    )
    return chirpstack_topic(APP_UUID, d.dev_eui), doc


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # integers beyond 64 bits too


@dataclass
class Case:
    """One generated message and the outcome it must have: ``reading`` (stored, no dead letter), a dead-letter
    stage (``envelope``, ``size``, ``device``, ``codec``) or ``None`` (any, but accounted for)."""

    kind: str
    topic: str
    payload: bytes
    expect: str | None


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
devices = st.sampled_from(DEVICES)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            out.extend(_paths(value, (*prefix, k)))
    return out


@st.composite
def valid(draw: Any, codec: str | None = None) -> Case:
    d = draw(st.sampled_from([x for x in DEVICES if codec is None or x.codec == codec]))
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    topic, doc = envelope(d, port, raw)
    return Case("valid", topic, dumps(doc), "reading")


@st.composite
def odd_payload(draw: Any, codec: str | None = None) -> Case:
    """A registered device's real envelope around arbitrary bytes, a cut or extended valid payload, any fPort."""
    d = draw(st.sampled_from([x for x in DEVICES if codec is None or x.codec == codec]))
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    how = draw(st.sampled_from(["bytes", "cut", "extend", "port"]))
    if how == "bytes":
        raw = draw(st.binary(min_size=1, max_size=64))
    elif how == "cut" and len(raw) > 1:
        raw = raw[: draw(st.integers(1, len(raw) - 1))]
    elif how == "extend":
        raw = raw + draw(st.binary(min_size=1, max_size=16))
    port = draw(st.integers(1, 223)) if how in ("port", "bytes") else port
    topic, doc = envelope(d, port, raw)
    return Case(f"payload {how}", topic, dumps(doc), None)


@st.composite
def field_replaced(draw: Any) -> Case:
    """A real message with one field (anywhere) replaced by a value of any type, or deleted."""
    d = draw(devices)
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    topic, doc = envelope(d, port, raw)
    path = draw(st.sampled_from(_paths(doc)))
    node = doc = copy.deepcopy(doc)
    for part in path[:-1]:
        node = node[part]
    if draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = draw(json_values)
    return Case("field replaced", topic, dumps(doc), None)


@st.composite
def bad_base64(draw: Any) -> Case:
    d = draw(devices)
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    topic, doc = envelope(d, port, raw)
    text = draw(
        st.sampled_from(
            ["!!!!", "AQI", "A===", "=", "AQID\n", "AQ ID", "\u00e4\u00f6\u00fc=", "%%%%", "AQID" * 2000 + "*"]
        )
    )
    if d.lns == "tts":
        doc["uplink_message"]["frm_payload"] = text
    else:
        doc["data"] = text
    return Case("bad base64", topic, dumps(doc), "envelope")


@st.composite
def bad_time(draw: Any) -> Case:
    d = draw(devices)
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    topic, doc = envelope(d, port, raw)
    when = draw(
        st.sampled_from(
            [
                "1969-12-31T23:59:59Z",
                "2100-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "0001-01-01T00:00:00Z",
                "2026-13-01T00:00:00Z",
                "2026-02-30T00:00:00Z",
                "yesterday",
                "",
                "2026-03-02T08:00:00",
                "1e9",
            ]
        )
        | st.integers(-(2**63), 2**63)
    )
    if d.lns == "tts":
        doc["uplink_message"]["received_at"] = when
        doc["received_at"] = when
    else:
        doc["time"] = when
        for gw in doc.get("rxInfo") or []:
            gw["nsTime"] = when
    return Case("bad time", topic, dumps(doc), None)


@st.composite
def bad_dev_eui(draw: Any) -> Case:
    d = draw(devices)
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    topic, doc = envelope(d, port, raw)
    eui = draw(
        st.sampled_from(
            [
                "",
                "0",
                "abc",
                d.dev_eui[:-1],
                d.dev_eui + "0",
                d.dev_eui + "00",
                "g" * 16,
                "-" * 16,
                d.dev_eui[:8] + " " + d.dev_eui[9:],
            ]
        )
        | st.text(max_size=40)
        | st.integers()
    )
    if d.lns == "tts":
        doc["end_device_ids"]["dev_eui"] = eui
    else:
        doc["deviceInfo"]["devEui"] = eui
    return Case("bad DevEUI", topic, dumps(doc), None)


@st.composite
def unknown_device(draw: Any) -> Case:
    d = draw(devices)
    port, raw = draw(st.sampled_from(VECTORS[d.codec]))
    stranger = FuzzDevice("ee" + d.dev_eui[2:], d.codec, d.lns)
    topic, doc = envelope(stranger, port, raw)
    return Case("unknown device", topic, dumps(doc), "device")


@st.composite
def raw_bytes(draw: Any) -> Case:
    d = draw(devices)
    data = draw(st.binary(max_size=300))
    topic = chirpstack_topic(APP_UUID, d.dev_eui) if d.lns == "chirpstack" else tts_topic("fz", d.device_id)
    # bytes that happen to be a JSON document of another shape are not an envelope either: any outcome
    return Case("arbitrary bytes", topic, data, None)


@st.composite
def wrong_shape(draw: Any) -> Case:
    d = draw(devices)
    topic = chirpstack_topic(APP_UUID, d.dev_eui) if d.lns == "chirpstack" else tts_topic("fz", d.device_id)
    return Case("JSON of the wrong shape", topic, dumps(draw(json_values)), None)


@st.composite
def deep(draw: Any) -> Case:
    depth = draw(st.integers(200, 5_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('{"end_device_ids":', "}")]))
    return Case(
        "deep nesting", "application/x/device/y/event/up", (opener * depth + "1" + closer * depth).encode(), None
    )


def huge(limit: int) -> Any:
    @st.composite
    def build(draw: Any) -> Case:
        d = draw(devices)
        port, raw = draw(st.sampled_from(VECTORS[d.codec]))
        topic, doc = envelope(d, port, raw)
        doc["padding"] = "x" * draw(st.integers(limit, limit * 3))
        return Case("huge", topic, dumps(doc), "size")

    return build()


def mixed(limit: int) -> Any:
    return st.one_of(
        valid(),
        odd_payload(),
        field_replaced(),
        bad_base64(),
        bad_time(),
        bad_dev_eui(),
        unknown_device(),
        raw_bytes(),
        wrong_shape(),
        deep(),
        huge(limit),
    )
