"""Nothing a sender puts in an MQTT message escapes ``parse_batch`` as an exception.

Hypothesis feeds arbitrary bytes, arbitrary JSON, real messages (the samples and built ones) with one field
replaced by a value of any type or deleted, bad timestamps, bad base64, bad DevEUIs, deep nesting and oversized
messages. Every batch must account for every input exactly once, reject only with a named reason (never an
"internal error"), and hand out only uplink columns that satisfy their documented invariants.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stadtpuls.ingest.envelopes import EnvelopeBatch, parse_batch
from stadtpuls.simulators.messages import chirpstack_uplink, tts_uplink

from ..conftest import examples

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "lns-formats" / "samples"
HUB_TS = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()

FUZZ = settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BASES: list[dict[str, Any]] = [orjson.loads(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))] + [
    tts_uplink(
        device_id="bin-1",
        app_id="city",
        dev_eui="70B3D52DD600035A",
        received_at=T0,
        f_port=2,
        f_cnt=7,
        payload=b"\x01\x02\x03",
        gateways=[("eui-0016c001f153a14c", -80.0, 7.0), ("gw2", -110.0, -3.5)],
        decoded={"distance": 1200},
    ),
    chirpstack_uplink(
        dev_eui="a84041000181c6a1",
        application_id="17c82e96-be03-4f38-aef3-f83d48582d97",
        time=T0,
        f_port=1,
        f_cnt=9,
        payload=b"\x0a\x0b",
        decoded={"temp": 21.5},
    ),
]
_v3 = orjson.loads((SAMPLES / "chirpstack-v3-up.json").read_bytes())
_v3["data"] = "AQID"
BASES.append(_v3)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
timestamp_text = st.one_of(
    st.text(max_size=40),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(lambda d: d.isoformat() + "Z"),
    st.builds(
        lambda d, off, frac: f"{d:%Y-%m-%dT%H:%M:%S}{frac}{off}",
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
        st.sampled_from(["Z", "+00:00", "-00:00", "+14:00", "-12:30", "z", "+0000", ""]),
        st.sampled_from(["", ".", ".1", ".123456", ".123456789", ".1234567890"]),
    ),
)

CASES = {"n": 0}


@pytest.fixture(scope="module", autouse=True)
def report_fuzz_cases() -> Iterator[None]:
    """Prints how many messages this module fed through parse_batch (visible with ``pytest -s``)."""
    yield
    print(f"\nenvelope fuzz: {CASES['n']} messages parsed")


def dumps(value: Any) -> bytes:
    """JSON bytes; the standard library also writes integers beyond 64 bits (orjson reads them as floats)."""
    return json.dumps(value).encode()


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (dict keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for k, value in enumerate(node):
            out.extend(paths(value, (*prefix, k)))
    return out


def replaced(doc: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    new = copy.deepcopy(doc)
    node = new
    for part in path[:-1]:
        node = node[part]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return new


def check(batch: EnvelopeBatch, n: int) -> None:
    """Invariants of every batch, whatever the input."""
    CASES["n"] += n
    events = [*batch.joins, *batch.statuses, *batch.logs, *batch.ignored, *batch.rejects]
    assert sorted([*batch.index.tolist(), *(e.index for e in events)]) == list(range(n))
    for r in batch.rejects:
        assert r.stage in ("size", "envelope")
        assert r.reason and not r.reason.startswith("internal error"), r.reason
    m = len(batch)
    for name in (
        "time",
        "dev_eui",
        "lns_device_id",
        "f_cnt",
        "f_cnt_present",
        "f_port",
        "rssi",
        "snr",
        "gateways",
        "gateway_id",
        "dr",
        "sf",
        "bandwidth",
        "frequency",
        "lns",
        "simulated",
        "decoded",
        "app_id",
        "session",
    ):
        assert getattr(batch, name).shape == (m,), name
    assert batch.dedup_key.shape == (m, 16) and batch.offsets.shape == (m + 1,)
    assert batch.offsets[0] == 0 and batch.offsets[-1] == batch.buf.shape[0]
    assert (np.diff(batch.offsets) > 0).all()  # a reading always has payload bytes
    assert ((batch.f_port >= 1) & (batch.f_port <= 255)).all()
    assert ((batch.f_cnt >= 0) & (batch.f_cnt <= 0xFFFFFFFF)).all()
    assert not np.isnat(batch.time).any()
    assert ((batch.time >= np.datetime64("2000-01-01")) & (batch.time < np.datetime64("2100-01-01"))).all()
    for k in range(m):
        eui = batch.dev_eui[k].decode()
        assert eui == eui.lower() and (len(eui) == 16 and int(eui, 16) >= 0 or eui == "" and batch.lns[k] == "tts")
        assert batch.lns[k] in ("tts", "chirpstack-v4", "chirpstack-v3")
        assert batch.decoded[k] is None or isinstance(batch.decoded[k], dict)
    assert not (np.abs(batch.rssi[~np.isnan(batch.rssi)]) > 1000).any()


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_never_raise(payloads: list[bytes]) -> None:
    check(parse_batch(["t"] * len(payloads), payloads, HUB_TS), len(payloads))


@FUZZ
@given(st.lists(json_values, max_size=6))
def test_arbitrary_json_never_raises(values: list[Any]) -> None:
    payloads = [dumps(v) for v in values]
    check(parse_batch(["t"] * len(payloads), payloads, HUB_TS), len(payloads))


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_field_of_a_real_message_replaced_by_any_value_never_raises(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(BASES))
    path = data.draw(st.sampled_from(paths(base)))
    value = data.draw(json_values)
    delete = data.draw(st.booleans())
    doc = replaced(base, path, value, delete)
    batch = parse_batch(["application/1/device/2/event/up"], [dumps(doc)], HUB_TS)
    check(batch, 1)
    again = parse_batch(["application/1/device/2/event/up"], [dumps(doc)], HUB_TS)
    assert np.array_equal(batch.dedup_key, again.dedup_key)  # the same message always gives the same key


@FUZZ
@given(st.sampled_from(BASES), timestamp_text, st.sampled_from(["t1", "t2", "both"]))
def test_bad_timestamps_in_time_fields_never_raise(base: dict[str, Any], value: str, which: str) -> None:
    doc = copy.deepcopy(base)
    up = doc.get("uplink_message")
    for key, target in (("t1", up if isinstance(up, dict) else doc), ("t2", doc)):
        if which in (key, "both"):
            target["received_at" if "end_device_ids" in doc else "time"] = value
    for gw in doc.get("rxInfo") or []:
        gw["nsTime" if "deviceInfo" in doc else "time"] = value
    check(parse_batch(["t"], [dumps(doc)], HUB_TS), 1)


@FUZZ
@given(st.sampled_from(BASES), st.text(max_size=30) | st.binary(max_size=20).map(lambda b: b.hex()))
def test_bad_deveui_and_base64_never_raise(base: dict[str, Any], text: str) -> None:
    docs = []
    for field in ("eui", "payload"):
        doc = copy.deepcopy(base)
        if "end_device_ids" in doc:
            if field == "eui":
                doc["end_device_ids"]["dev_eui"] = text
            elif isinstance(doc.get("uplink_message"), dict):
                doc["uplink_message"]["frm_payload"] = text
        elif "deviceInfo" in doc:
            if field == "eui":
                doc["deviceInfo"]["devEui"] = text
            else:
                doc["data"] = text
        elif field == "eui":
            doc["devEUI"] = text
        else:
            doc["data"] = text
        docs.append(dumps(doc))
    batch = parse_batch(["t"] * 2, docs, HUB_TS)
    check(batch, 2)
    for k in range(len(batch)):
        assert len(batch.dev_eui[k]) in (0, 16)


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(min_value=1000, max_value=20000), st.sampled_from(["[", '{"a":', '{"end_device_ids":']))
def test_deep_nesting_is_a_dead_letter(depth: int, opener: str) -> None:
    closer = {"[": "]", '{"a":': "}", '{"end_device_ids":': "}"}[opener]
    raw = (opener * depth + "1" + closer * depth).encode()
    batch = parse_batch(["t"], [raw], HUB_TS, max_message_bytes=len(raw))
    check(batch, 1)
    assert len(batch.rejects) == 1


@settings(max_examples=examples(30), deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.sampled_from(BASES))
def test_messages_over_the_limit_are_size_dead_letters(extra: int, base: dict[str, Any]) -> None:
    doc = dict(base, padding="x" * extra)
    raw = dumps(doc)
    limit = 1200
    batch = parse_batch(["t"], [raw], HUB_TS, max_message_bytes=limit)
    check(batch, 1)
    assert (len(raw) > limit) == any(r.stage == "size" for r in batch.rejects)


@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.sampled_from(BASES), min_size=1, max_size=20), st.floats(min_value=0, max_value=86400 * 365))
def test_batches_of_real_messages_are_independent_of_batch_composition(
    docs: list[dict[str, Any]], shift: float
) -> None:
    payloads = [dumps(d) for d in docs]
    batch = parse_batch(["t"] * len(payloads), payloads, HUB_TS + shift)
    check(batch, len(payloads))
    for k, i in enumerate(batch.index.tolist()):
        alone = parse_batch(["t"], [payloads[i]], HUB_TS + shift)
        assert len(alone) == 1
        assert bytes(alone.dedup_key[0]) == bytes(batch.dedup_key[k])
        assert alone.time[0] == batch.time[k]
        assert alone.payload(0) == batch.payload(k)


def test_hub_time_shift_moves_only_rows_without_a_server_time() -> None:
    raw = dumps(BASES[-3])  # built TTS uplink: has the NS received_at
    a = parse_batch(["t"], [raw], HUB_TS)
    b = parse_batch(["t"], [raw], HUB_TS + 3600)
    assert a.time[0] == b.time[0] == np.datetime64(T0.replace(tzinfo=None), "us")
    minimal = (SAMPLES / "tts-v3-uplink-minimal.json").read_bytes()
    c = parse_batch(["t"], [minimal], HUB_TS + 3600)
    assert c.time[0].item() == datetime.fromtimestamp(HUB_TS, UTC).replace(tzinfo=None) + timedelta(hours=1)
