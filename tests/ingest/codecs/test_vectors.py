"""Every decoder test vector of the TTN Device Repository (``tests/data/codec-vectors``) against every codec.

The vector files are read at run time from ``tests/data/codec-vectors`` or
from the directory named by ``STADTPULS_CODEC_VECTORS``. Each vector is decoded three ways: alone through the
vectorised ``decode``, together with the rest of its file as one mixed batch, and through the per-message
``decode_row``. Objects must match the official output exactly: the same keys, equal numbers (3 == 3.0, but a
bool is not a number), equal strings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stadtpuls.ingest.codecs import get


def vectors_dir() -> Path:
    env = os.environ.get("STADTPULS_CODEC_VECTORS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data" / "codec-vectors"


def codec_id(path: Path, vendor: str) -> str:
    """``bosch-tps110.json`` with vendor ``bosch`` -> ``bosch/tps110``."""
    return f"{vendor}/{path.stem[len(vendor) + 1 :]}"


def load_cases() -> tuple[list[Any], list[Any], list[Any]]:
    good, bad, files = [], [], []
    directory = vectors_dir()
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        cid = codec_id(path, data["vendor"])
        files.append(pytest.param(cid, data, id=path.stem))
        for v in data["vectors"]:
            good.append(pytest.param(cid, v, id=f"{path.stem}: {v['description']}"))
        for v in data.get("error_vectors", []):
            bad.append(pytest.param(cid, v, id=f"{path.stem}: {v['description']}"))
    return good, bad, files


GOOD, BAD, FILES = load_cases()


def assert_same_json(actual: Any, expected: Any, where: str = "$") -> None:
    """JSON equality: numbers by value; bools, strings, null, lists and objects exactly."""
    differ = f"{where}: {actual!r} != {expected!r}"
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert type(actual) is type(expected) and actual == expected, differ
    elif isinstance(expected, int | float):
        assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{where}: not a number"
        assert actual == expected, differ
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), differ
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_json(a, e, f"{where}[{i}]")
    else:
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert sorted(actual) == sorted(expected), f"{where}: keys {sorted(actual)} != {sorted(expected)}"
        for k in expected:
            assert_same_json(actual[k], expected[k], f"{where}.{k}")


def batch(vectors: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    payloads = [bytes.fromhex(v["bytes_hex"]) for v in vectors]
    ports = np.array([v["f_port"] for v in vectors], dtype=np.int64)
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    return ports, np.frombuffer(b"".join(payloads), dtype=np.uint8), offsets


def test_vector_files_are_found() -> None:
    assert len(FILES) == 10, f"expected the ten vector files in {vectors_dir()}"


@pytest.mark.parametrize(("cid", "vector"), GOOD)
def test_vector_decodes_to_official_object(cid: str, vector: dict[str, Any]) -> None:
    codec = get(cid)
    decoded = codec.decode(*batch([vector]))
    assert decoded.ok.tolist() == [True], decoded.error[0]
    assert_same_json(decoded.objects()[0], vector["expected"])
    row = codec.decode_row(vector["f_port"], bytes.fromhex(vector["bytes_hex"]))
    assert_same_json(row, vector["expected"], "decode_row")


@pytest.mark.parametrize(("cid", "vector"), BAD)
def test_error_vector_gives_official_errors(cid: str, vector: dict[str, Any]) -> None:
    codec = get(cid)
    decoded = codec.decode(*batch([vector]))
    assert decoded.ok.tolist() == [False]
    assert decoded.objects() == [None]
    assert [decoded.error[0]] == vector["expected_errors"]
    row = codec.decode_row(vector["f_port"], bytes.fromhex(vector["bytes_hex"]))
    assert_same_json(row, {"errors": vector["expected_errors"]}, "decode_row")


@pytest.mark.parametrize(("cid", "data"), FILES)
def test_whole_vector_file_decodes_as_one_mixed_batch(cid: str, data: dict[str, Any]) -> None:
    vectors = data["vectors"] + data.get("error_vectors", [])
    decoded = get(cid).decode(*batch(vectors * 3))  # repeated, so every layout group has several rows
    objects = decoded.objects()
    for i, v in enumerate(vectors * 3):
        if "expected" in v:
            assert_same_json(objects[i], v["expected"], f"{v['description']} (row {i})")
        else:
            assert objects[i] is None and [decoded.error[i]] == v["expected_errors"]
