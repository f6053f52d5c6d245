"""Property tests of the record-structured codecs (Milesight EM310-UDL and VS133, Elsys ERS,
WILSEN.sonic.level) and the ESP32-Paxcounter.

* The vectorised ``decode`` equals the per-message reference ``decode_row`` row by row (objects, types of
  numbers, and error texts), on arbitrary bytes and on structured random record sequences. Each batch is
  decoded three ways: with the default settings, with every layout group decoded by representative layouts
  (``layout_min_rows = 1``), and with every row going through the lock-step walk (``layout_min_rows``
  huge). Batches repeat a few payloads many times so that layout groups form.
* Arbitrary bytes on arbitrary fPorts never raise.
* encode -> decode gives the input back over the fields' real value ranges.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stadtpuls.ingest.codecs import Codec, get
from stadtpuls.ingest.codecs.elsys import ElsysERS
from stadtpuls.ingest.codecs.milesight import EM310UDL, VS133, MilesightCodec
from stadtpuls.ingest.codecs.paxcounter import LAYOUTS
from stadtpuls.ingest.codecs.paxcounter_fields import FLAGS, PAYLOADMASK
from stadtpuls.ingest.codecs.pepperl_fuchs import WilsenSonicLevel
from stadtpuls.ingest.codecs.wilsen_records import RECORDS

from ...conftest import examples

RECORD_CODECS = {
    "milesight-iot/em310-udl": EM310UDL,
    "milesight-iot/vs133": VS133,
    "elsys/ers": ElsysERS,
    "pepperl-fuchs/wilsen-sonic-level": WilsenSonicLevel,
}
ALL_IDS = [*RECORD_CODECS, "opensource/esp32-paxcounter"]
FAST = settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_batch(ports: list[int], payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    return np.array(ports, dtype=np.int64), np.frombuffer(b"".join(payloads), dtype=np.uint8), offsets


def assert_matches_reference(codec: Codec, ports: list[int], payloads: list[bytes]) -> None:
    decoded = codec.decode(*make_batch(ports, payloads))
    objects = decoded.objects()
    assert decoded.n == len(payloads) == len(objects)
    for i, (port, payload) in enumerate(zip(ports, payloads, strict=True)):
        ref = codec.decode_row(port, payload)
        where = f"row {i}: fPort {port} payload {payload.hex()}"
        if "errors" in ref:
            assert not decoded.ok[i] and objects[i] is None, where
            assert [decoded.error[i]] == ref["errors"], where
        else:
            assert decoded.ok[i], f"{where}: {decoded.error[i]}"
            # JSON text comparison: same keys, values, nesting and int/float kinds
            assert json.dumps(objects[i], sort_keys=True) == json.dumps(ref, sort_keys=True), where


def variants(cid: str) -> list[Codec]:
    """The registered codec plus instances forced onto each decoding path."""
    codecs: list[Codec] = [get(cid)]
    if cid in RECORD_CODECS:
        for min_rows in (1, 10**9):
            c = RECORD_CODECS[cid]()
            c.layout_min_rows = min_rows
            codecs.append(c)
    return codecs


# --- structured payloads ------------------------------------------------------------------------------


def milesight_payloads(codec: MilesightCodec) -> st.SearchStrategy[bytes]:
    known = st.sampled_from(codec.records).flatmap(
        lambda r: st.binary(min_size=r.size, max_size=r.size).map(lambda v: bytes([r.channel, r.ctype]) + v)
    )
    near_miss = st.sampled_from(codec.records).map(lambda r: bytes([r.channel, r.ctype ^ 0x01]))
    piece = st.one_of(known, known, known, near_miss, st.binary(min_size=1, max_size=3))
    return st.lists(piece, max_size=7).map(b"".join)


def elsys_payloads() -> st.SearchStrategy[bytes]:
    from stadtpuls.ingest.codecs.elsys import _RECORDS

    known = st.sampled_from(_RECORDS).flatmap(
        lambda r: st.binary(min_size=r[2], max_size=r[2]).map(lambda v: bytes([r[0]]) + v)
    )
    other = st.tuples(st.integers(0, 0x40), st.binary(max_size=3)).map(lambda t: bytes([t[0]]) + t[1])
    return st.lists(st.one_of(known, known, known, other), max_size=8).map(b"".join)


def wilsen_payloads() -> st.SearchStrategy[bytes]:
    ids = st.one_of(st.sampled_from([r.rid for r in RECORDS]), st.integers(0, 0xFFFF))

    def record(rid: int, size_hint: int, extra: int) -> st.SearchStrategy[bytes]:
        size = next((r.size for r in RECORDS if r.rid == rid), size_hint)
        length = max(0, 2 + size + extra)
        return st.binary(min_size=max(length - 2, 0), max_size=max(length - 2, 0)).map(
            lambda v: bytes([min(length, 255)]) + rid.to_bytes(2, "big") + v
        )

    good = st.tuples(ids, st.integers(0, 6), st.just(0)).flatmap(lambda t: record(*t))
    odd = st.tuples(ids, st.integers(0, 6), st.integers(-4, 3)).flatmap(lambda t: record(*t))
    ties = st.integers(-1000, 1000).map(lambda k: k / 4)  # x.25 / x.75: toFixed(1) ties
    floats = st.one_of(ties, st.floats(width=32, allow_nan=True, allow_infinity=True)).map(
        lambda x: b"\x06\x02\x01" + np.float32(x).tobytes()[::-1]
    )
    piece = st.one_of(good, good, floats, odd, st.binary(max_size=3))
    return st.lists(piece, max_size=6).map(b"".join)


def pax_payloads() -> st.SearchStrategy[tuple[int, bytes]]:
    lengths = sorted({ln for (_, ln) in LAYOUTS if ln} | {0, 1, 3, 9, 13, 14, 16, 18, 21, 22, 25})
    return st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 85]), st.sampled_from(lengths)).flatmap(
        lambda t: st.binary(min_size=t[1], max_size=t[1]).map(lambda b: (t[0], b))
    )


def structured(cid: str) -> st.SearchStrategy[tuple[int, bytes]]:
    if cid == "opensource/esp32-paxcounter":
        return pax_payloads()
    if cid == "elsys/ers":
        gen = elsys_payloads()
    elif cid == "pepperl-fuchs/wilsen-sonic-level":
        gen = wilsen_payloads()
    else:
        codec = get(cid)
        assert isinstance(codec, MilesightCodec)
        gen = milesight_payloads(codec)
    return gen.map(lambda b: (85, b))


def header_bytes(cid: str) -> list[int]:
    """Byte values that turn one record header into another (for same-length variants of a payload)."""
    if cid == "elsys/ers":
        return [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x3D]
    if cid == "pepperl-fuchs/wilsen-sonic-level":
        return sorted({b for r in RECORDS for b in r.rid.to_bytes(2, "big")} | {0, 1, 3, 4, 6, 0xF1})
    if cid == "opensource/esp32-paxcounter":
        return [0]
    codec = get(cid)
    assert isinstance(codec, MilesightCodec)
    return sorted({b for r in codec.records for b in (r.channel, r.ctype)})


@st.composite
def repeated(draw: st.DrawFn, cid: str) -> tuple[list[int], list[bytes]]:
    """A batch drawn from a few distinct payloads, each repeated, in random order. Some payloads are variants
    of others with one byte changed to a header value, so that one length holds several layouts."""
    pool = draw(st.lists(structured(cid), min_size=1, max_size=8))
    for _ in range(draw(st.integers(0, 6))):
        port, payload = pool[draw(st.integers(0, len(pool) - 1))]
        if payload:
            pos = draw(st.integers(0, len(payload) - 1))
            value = draw(st.sampled_from(header_bytes(cid)))
            pool.append((port, payload[:pos] + bytes([value]) + payload[pos + 1 :]))
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=120))
    return [pool[k][0] for k in picks], [pool[k][1] for k in picks]


@pytest.mark.parametrize("cid", ALL_IDS)
@FAST
@given(data=st.data())
def test_vectorised_decode_equals_reference_on_structured_records(cid: str, data: st.DataObject) -> None:
    ports, payloads = data.draw(repeated(cid))
    for codec in variants(cid):
        assert_matches_reference(codec, ports, payloads)


@pytest.mark.parametrize("cid", ALL_IDS)
@FAST
@given(
    batch=st.lists(st.tuples(st.integers(0, 300), st.binary(max_size=40)), max_size=60),
)
def test_vectorised_decode_equals_reference_on_arbitrary_bytes(cid: str, batch: list[tuple[int, bytes]]) -> None:
    ports = [p for p, _ in batch]
    payloads = [b for _, b in batch]
    for codec in variants(cid):
        assert_matches_reference(codec, ports, payloads)


@pytest.mark.parametrize("cid", ALL_IDS)
@FAST
@given(
    ports=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=30),
    blob=st.binary(max_size=300),
    cuts=st.lists(st.integers(0, 300), max_size=29),
)
def test_arbitrary_bytes_never_raise(cid: str, ports: list[int], blob: bytes, cuts: list[int]) -> None:
    bounds = sorted(min(c, len(blob)) for c in cuts[: len(ports) - 1])
    offsets = np.array([0, *bounds, len(blob)], dtype=np.int64)
    ports = ports[: len(offsets) - 1]
    decoded = get(cid).decode(np.array(ports, dtype=np.int64), np.frombuffer(blob, dtype=np.uint8), offsets)
    objects = decoded.objects()
    assert len(objects) == len(ports)
    for ok, err, obj in zip(decoded.ok.tolist(), decoded.error.tolist(), objects, strict=True):
        assert (obj is not None) if ok else (obj is None and isinstance(err, str) and err)


# --- encode -> decode ---------------------------------------------------------------------------------


def scaled(lo: int, hi: int, scale: int) -> st.SearchStrategy[float]:
    return st.integers(lo, hi).map(lambda k: k / scale)


def columns_of(fields: dict[str, st.SearchStrategy[Any]], n: int) -> st.SearchStrategy[dict[str, list[Any]]]:
    return st.fixed_dictionaries({k: st.lists(s, min_size=n, max_size=n) for k, s in fields.items()})


def subset(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, st.SearchStrategy[Any]]]:
    names = sorted(fields)
    return st.lists(st.sampled_from(names), min_size=1, unique=True).map(lambda ks: {k: fields[k] for k in ks})


EM310_FIELDS = {
    "battery": st.integers(0, 100),
    "distance": st.integers(0, 65535),
    "tilt": st.sampled_from(["normal", "tilt"]),
}
VS133_FIELDS = {
    f"line_{n}.{k}": st.integers(0, 2**32 - 1) if k.startswith("total") else st.integers(0, 65535)
    for n in range(1, 5)
    for k in ("total_in", "total_out", "period_in", "period_out")
}
ELSYS_FIELDS = {
    "temperature": scaled(-400, 850, 10),
    "humidity": st.integers(0, 100),
    "light": st.integers(0, 65535),
    "motion": st.integers(0, 255),
    "co2": st.integers(0, 10000),
    "vdd": st.integers(2000, 3700),
}
WILSEN_FIELDS = {
    "proxx": st.integers(0, 65535),
    "proxx_mm": st.integers(0, 65535),
    "fillinglvl": st.integers(0, 100),
    "amplitude": st.integers(0, 255),
    "temp": scaled(-400, 850, 10),
    "battery_vol": scaled(0, 255, 10),
    "latitude": scaled(-90_000_000, 90_000_000, 1_000_000),
    "longitude": scaled(-180_000_000, 180_000_000, 1_000_000),
    "serial_nr": st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=14),
    "lora_count": st.integers(0, 65535),
    "gps_count": st.integers(0, 65535),
    "us_sensor_count": st.integers(0, 2**32 - 1),
}
READER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "u8": st.integers(0, 255),
    "u16": st.integers(0, 65535),
    "i16": st.integers(-32768, 32767),
    "alt": st.integers(-500, 9000),
    "i32": st.integers(-(2**31), 2**31 - 1),
    "latlng": scaled(-180_000_000, 180_000_000, 1_000_000),
    "hdop": scaled(0, 65535, 100),
    "temp": scaled(-4000, 8500, 100),
    "p10": scaled(3000, 11000, 10),
    "u100": scaled(0, 65535, 100),
    "uptime": st.integers(0, 2**31 - 1),
    "version": st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10),
}


def pax_fields(layout: tuple[tuple[str, str], ...]) -> dict[str, st.SearchStrategy[Any]]:
    out: dict[str, st.SearchStrategy[Any]] = {}
    for key, reader in layout:
        if reader in ("flags", "payloadmask"):
            for name, _ in FLAGS if reader == "flags" else PAYLOADMASK:
                out[f"{key}.{name}"] = st.integers(0, 1)
        else:
            out[key] = READER_VALUES[reader]
    return out


def roundtrip_cases() -> list[Any]:
    cases = [
        pytest.param("milesight-iot/em310-udl", 85, subset(EM310_FIELDS), id="em310-udl"),
        pytest.param("milesight-iot/vs133", 85, subset(VS133_FIELDS), id="vs133"),
        pytest.param("elsys/ers", 5, subset(ELSYS_FIELDS), id="elsys-ers"),
        pytest.param("pepperl-fuchs/wilsen-sonic-level", 1, subset(WILSEN_FIELDS), id="wilsen"),
    ]
    for (port, length), layout in LAYOUTS.items():
        cases.append(
            pytest.param(
                "opensource/esp32-paxcounter",
                port,
                st.just(pax_fields(layout)),
                id=f"paxcounter-{port}-{length}",
            )
        )
    return cases


def expected_object(cid: str, values: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, v in values.items():
        target = obj
        *parents, key = name.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[key] = v
    return obj


@pytest.mark.parametrize(("cid", "f_port", "fields"), roundtrip_cases())
@settings(max_examples=examples(40), deadline=None)
@given(data=st.data())
def test_encode_then_decode_gives_the_values_back(cid: str, f_port: int, fields: Any, data: st.DataObject) -> None:
    if cid == "milesight-iot/vs133":  # a period record carries both counts
        chosen = data.draw(fields)
        for name in list(chosen):
            if ".period_" in name:
                line = name.split(".")[0]
                chosen[f"{line}.period_in"] = VS133_FIELDS[f"{line}.period_in"]
                chosen[f"{line}.period_out"] = VS133_FIELDS[f"{line}.period_out"]
    else:
        chosen = data.draw(fields)
    n = data.draw(st.integers(1, 12))
    values = data.draw(columns_of(chosen, n))
    codec = get(cid)
    columns = {k: np.array(v, dtype=object if isinstance(v[0], str) else None) for k, v in values.items()}
    buf, offsets = codec.encode(f_port, columns)
    assert buf.dtype == np.uint8 and len(offsets) == n + 1
    decoded = codec.decode(np.full(n, f_port), buf, offsets)
    assert decoded.ok.all(), decoded.error
    for i, obj in enumerate(decoded.objects()):
        row_values = {k: v[i] for k, v in values.items()}
        assert obj is not None
        payload = bytes(buf[offsets[i] : offsets[i + 1]])
        assert codec.decode_row(f_port, payload) == obj
        for derived in ("bytes", "port", "pax", "payload"):
            obj.pop(derived, None)
        assert obj == expected_object(cid, row_values)
