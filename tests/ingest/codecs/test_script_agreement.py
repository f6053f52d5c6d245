"""The vectorised built-ins and the project's JavaScript versions of them decode arbitrary payloads alike.

For six codecs the project wrote a script from the byte layout (``tests/data/scripts/``). Hypothesis draws
batches of payloads of any length and content on the codecs' fPorts and others; both decoders must agree on
every row: the same object (as JSON: booleans are not numbers, ``3`` equals ``3.0``), or the same error.
This is also how a future vectorised codec is checked against the script it replaces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.codecs.cli import _js_numbers
from stadtpuls.ingest.codecs.script import ScriptCodec

from ...conftest import examples

SCRIPTS = Path(__file__).resolve().parents[2] / "data" / "scripts"
CODECS = {
    "bosch/tps110": ("bosch-tps110.js", [0, 1, 2, 3, 4, 5, 6, 7, 200]),
    "nwave/nps405": ("nwave-nps405.js", [0, 1, 2, 3, 6, 10, 11, 255]),
    "dragino/lht65": ("dragino-lht65.js", [1, 2, 3]),
    "milesight-iot/em310-udl": ("milesight-em310-udl.js", [85]),
    "milesight-iot/vs133": ("milesight-vs133.js", [85]),
    "elsys/ers": ("elsys-ers.js", [5]),
}
#: record headers of the record-structured codecs: payloads are built from them, so that records are parsed
HEADERS = {
    "milesight-iot/em310-udl": [b"\x01\x75", b"\x03\x82", b"\x04\x00"],
    "milesight-iot/vs133": [bytes([c, t]) for c in range(3, 15) for t in (0xD2, 0xCC)],
    "elsys/ers": [bytes([t]) for t in range(0, 0x20)],
}
_scripts: dict[str, ScriptCodec] = {}


def script_of(codec_id: str) -> ScriptCodec:
    if codec_id not in _scripts:
        _scripts[codec_id] = ScriptCodec(codec_id, (SCRIPTS / CODECS[codec_id][0]).read_text())
    return _scripts[codec_id]


def as_json(obj: Any) -> bytes:
    return orjson.dumps(_js_numbers(obj), option=orjson.OPT_SORT_KEYS)


def uplinks(codec_id: str) -> st.SearchStrategy[list[tuple[int, bytes]]]:
    # lengths around the layouts' sizes are where the branches are; any length is allowed
    payload = st.one_of(st.binary(min_size=0, max_size=24), st.binary(min_size=11, max_size=11))
    if codec_id in HEADERS:  # records: known headers followed by values of any length, or noise
        piece = st.one_of(
            st.tuples(st.sampled_from(HEADERS[codec_id]), st.binary(max_size=5)).map(lambda p: p[0] + p[1]),
            st.binary(max_size=3),
        )
        payload = st.one_of(payload, st.lists(piece, max_size=6).map(b"".join))
    return st.lists(st.tuples(st.sampled_from(CODECS[codec_id][1]), payload), min_size=1, max_size=60)


def assert_agree(codec_id: str, rows: list[tuple[int, bytes]]) -> None:
    ports = np.array([p for p, _ in rows], dtype=np.int64)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(b) for _, b in rows], out=offsets[1:])
    buf = np.frombuffer(b"".join(b for _, b in rows), dtype=np.uint8)
    vec = get(codec_id).decode(ports, buf, offsets)
    js = script_of(codec_id).decode(ports, buf, offsets)
    vec_objects, js_objects = vec.objects(), js.objects()
    for i, (port, payload) in enumerate(rows):
        where = f"{codec_id} fPort {port} payload {payload.hex()}"
        assert bool(vec.ok[i]) == bool(js.ok[i]), f"{where}: {vec.error[i]!r} vs {js.error[i]!r}"
        if vec.ok[i]:
            assert as_json(vec_objects[i]) == as_json(js_objects[i]), where
        else:
            assert vec.error[i] == js.error[i], where


@pytest.mark.parametrize("codec_id", sorted(CODECS))
def test_vectorised_and_script_agree_on_arbitrary_payloads(codec_id: str) -> None:
    @settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=uplinks(codec_id))
    def check(rows: list[tuple[int, bytes]]) -> None:
        assert_agree(codec_id, rows)

    check()


@pytest.mark.parametrize("codec_id", sorted(CODECS))
def test_vectorised_and_script_agree_on_a_large_random_batch(codec_id: str) -> None:
    rng = np.random.default_rng(7)
    ports = CODECS[codec_id][1]
    size = max(examples(20_000), 5_000)  # the profile's share, at least more than one engine chunk (4096 rows)
    lengths = np.where(rng.random(size) < 0.5, 11, rng.integers(0, 24, size))
    rows = [(int(rng.choice(ports)), rng.bytes(int(n))) for n in lengths]
    headers = HEADERS.get(codec_id, [])
    for k in range(len(rows) if headers else 0):  # records with values of the right or a wrong size
        parts = [headers[h] + rng.bytes(w) for h, w in rng.integers(0, [len(headers), 6], (3, 2)).tolist()]
        rows[k] = (rows[k][0], b"".join(parts)[: int(rng.integers(0, 30))])
    assert_agree(codec_id, rows)


def test_a_differing_script_is_caught() -> None:
    """The comparison is not vacuous: a script that gets one field wrong on one frame type fails it."""
    source = (SCRIPTS / "bosch-tps110.js").read_text().replace("b[1] - 256", "b[1] - 255")
    _scripts["bosch/tps110"] = ScriptCodec("bosch/tps110", source)
    try:
        with pytest.raises(AssertionError, match="fPort 2 payload 01ff"):
            assert_agree("bosch/tps110", [(1, b"\x01"), (2, b"\x01\xff")])
    finally:
        del _scripts["bosch/tps110"]
