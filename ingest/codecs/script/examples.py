"""A codec script's examples: read from the vendor's files, kept with the script, run as its tests.

Two sources are read, both in the LoRaWAN Payload Codec API's example form (``input: {fPort, bytes}``,
``output: {data, warnings, errors}``):

* a TTN Device Repository codec YAML: its ``uplinkDecoder.examples``;
* a JSON file (ChirpStack's ``test_decode_*.json`` and similar): a list of examples, or an object holding one
  under ``examples`` or ``tests``; ``expected`` is accepted for ``output`` and ``hex`` for ``bytes``.

Examples of another ``type`` than ``uplink`` (downlink encoders and decoders) are skipped. An example is kept as
``{description, f_port, bytes_hex, recv_time?, data?, warnings?, errors?}``. :func:`run_examples` decodes all of them as
one batch and compares: an example with ``errors`` passes when the codec rejects the payload with those errors,
one with ``data`` when the decoded object is equal (numbers compared as numbers, ``3`` equals ``3.0``).

Exceptions::

    CodecError                  (ingest.codecs.base)
     +-- ExamplesError          the file cannot be read as examples (attributes: source)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..base import CodecError
from .codec import ScriptCodec

__all__ = ["ExampleResult", "ExamplesError", "diff", "load_examples", "parse_examples", "run_examples"]


class ExamplesError(CodecError):
    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


def load_examples(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ExamplesError(str(p), f"cannot read: {e}") from None
    return parse_examples(text, str(p))


def parse_examples(text: str, source: str = "<examples>") -> list[dict[str, Any]]:
    """The uplink examples of a codec YAML or a JSON test file (see the module docstring)."""
    try:
        doc = yaml.safe_load(text)  # YAML 1.1 reads JSON documents too
    except yaml.YAMLError as e:
        raise ExamplesError(source, f"neither YAML nor JSON: {e}") from None
    if isinstance(doc, dict):
        if isinstance(doc.get("uplinkDecoder"), dict):
            doc = doc["uplinkDecoder"].get("examples") or []
        else:
            doc = doc.get("examples", doc.get("tests", [doc]))
    if not isinstance(doc, list):
        raise ExamplesError(source, "expected uplinkDecoder.examples or a list of examples")
    out = []
    for i, ex in enumerate(doc, start=1):
        if not isinstance(ex, dict):
            raise ExamplesError(source, f"example {i}: not a mapping")
        if ex.get("type", "uplink") != "uplink":
            continue
        out.append(_example(ex, f"{source}: example {i}"))
    return out


def _example(ex: dict[str, Any], where: str) -> dict[str, Any]:
    inp = ex.get("input")
    if not isinstance(inp, dict):
        raise ExamplesError(where, "no input")
    port = inp.get("fPort", inp.get("f_port"))
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 255:
        raise ExamplesError(where, "input.fPort must be an integer 0..255")
    raw = inp.get("bytes", inp.get("hex"))
    try:
        if isinstance(raw, str):
            payload = bytes.fromhex(raw)
        elif isinstance(raw, list):
            payload = bytes(raw)
        else:
            raise ValueError("missing")
    except (ValueError, TypeError):
        raise ExamplesError(where, "input.bytes must be a list of byte values (or hex text)") from None
    expected = ex.get("output", ex.get("expected"))
    if not isinstance(expected, dict):
        raise ExamplesError(where, "no output")
    kept: dict[str, Any] = {"description": str(ex.get("description") or ""), "f_port": port}
    kept["bytes_hex"] = payload.hex()
    if inp.get("recvTime") is not None:
        kept["recv_time"] = str(inp["recvTime"])
    for key in ("data", "warnings", "errors"):
        if expected.get(key) is not None:
            kept[key] = expected[key]
    if "data" not in kept and "errors" not in kept:
        raise ExamplesError(where, "output has neither data nor errors")
    return kept


@dataclass
class ExampleResult:
    example: dict[str, Any]
    passed: bool
    differences: list[str]
    got: Any


def run_examples(codec: ScriptCodec, examples: Sequence[dict[str, Any]]) -> list[ExampleResult]:
    """Decode every example in one batch and compare with its expected output."""
    payloads = [bytes.fromhex(e["bytes_hex"]) for e in examples]
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    ports = np.array([e["f_port"] for e in examples], dtype=np.int64)
    now = datetime.now(UTC)
    times = [_utc(e["recv_time"]) if e.get("recv_time") else now for e in examples]
    recv = np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[us]")
    decoded = codec.decode_uplinks(ports, buf, offsets, recv)
    results = []
    for i, ex in enumerate(examples):
        if "errors" in ex and ex["errors"]:
            want = "; ".join(map(str, ex["errors"]))
            got = decoded.error[i]
            if decoded.ok[i]:
                differences = [f"errors: expected {want!r}, got data {json.dumps(decoded.data[i])}"]
            else:
                differences = [] if got == want else [f"errors: expected {want!r}, got {got!r}"]
        elif not decoded.ok[i]:
            got = decoded.error[i]
            differences = [f"error {got!r}, expected data"]
        else:
            got = decoded.data[i]
            differences = diff(ex.get("data"), got)
            if ex.get("warnings") and (decoded.warnings[i] or []) != ex["warnings"]:
                differences.append(f"warnings: expected {ex['warnings']!r}, got {decoded.warnings[i]!r}")
        results.append(ExampleResult(ex, not differences, differences, got))
    return results


def _utc(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def diff(expected: Any, got: Any, path: str = "data") -> list[str]:
    """The differences between two JSON values, one line per differing path."""
    if isinstance(expected, dict) and isinstance(got, dict):
        out = []
        for key in expected.keys() | got.keys():
            sub = f"{path}.{key}"
            if key not in got:
                out.append(f"{sub}: missing, expected {json.dumps(expected[key])}")
            elif key not in expected:
                out.append(f"{sub}: unexpected {json.dumps(got[key])}")
            else:
                out += diff(expected[key], got[key], sub)
        return sorted(out)
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [d for i, (a, b) in enumerate(zip(expected, got, strict=True)) for d in diff(a, b, f"{path}[{i}]")]
    if _same(expected, got):
        return []
    return [f"{path}: expected {json.dumps(expected)}, got {json.dumps(got)}"]


def _same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, numbers) and isinstance(b, numbers):
        return a == b
    return type(a) is type(b) and a == b
