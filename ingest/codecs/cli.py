"""``stadtpuls decode --codec ID``: decode uplink payloads given as JSON lines, as one vectorised batch.

Input (stdin), one object per line (blank lines are skipped)::

    {"f_port": 6, "bytes_hex": "0134012401012c0107320a"}

Output (stdout), one line per input line in the same order: the decoded object as the official decoder writes
it (numbers as JavaScript prints them, so ``3.0`` is ``3``), or ``{"error": "..."}`` for a line that is not
valid JSON, has a bad ``f_port`` or hex string, or that the codec rejects (unknown fPort, wrong length, ...).
An unknown codec id is reported on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any

import numpy as np
import orjson

from .base import UnknownCodec
from .codec_registry import all_codecs, get

__all__ = ["add_arguments", "decode_lines", "main", "run", "setup"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codec", required=True, metavar="ID", help="TTN Device Repository id, e.g. netvox/r718x")


def setup(parser: argparse.ArgumentParser) -> None:
    """Register ``stadtpuls decode`` (called by ``stadtpuls.cli``)."""
    add_arguments(parser)
    parser.set_defaults(func=run)


def _parse(line: bytes) -> tuple[int, bytes] | str:
    """(f_port, payload) of one input line, or the error text."""
    try:
        msg = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return f"bad JSON: {exc}"
    if not isinstance(msg, dict):
        return "bad input: expected an object with f_port and bytes_hex"
    port = msg.get("f_port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 255:
        return "bad f_port: expected an integer 0..255"
    text = msg.get("bytes_hex")
    if not isinstance(text, str):
        return "bad bytes_hex: expected a string of hex digits"
    try:
        return port, bytes.fromhex(text)
    except ValueError:
        return "bad hex: bytes_hex must be an even number of hex digits"


def _js_numbers(value: Any) -> Any:
    """Integral floats as ints (JavaScript prints 3.0 as 3 and -0 as 0), recursively."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _js_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_js_numbers(v) for v in value]
    return value


def decode_lines(codec_id: str, lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """Decode input lines (see the module docstring) into one output object per line."""
    codec = get(codec_id)
    parsed = [_parse(line) for line in lines]
    good = [i for i, p in enumerate(parsed) if not isinstance(p, str)]
    rows: list[tuple[int, bytes]] = [p for p in parsed if not isinstance(p, str)]
    out: list[dict[str, Any]] = [{"error": p} if isinstance(p, str) else {} for p in parsed]
    ports = np.array([p for p, _ in rows], dtype=np.int64)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(b) for _, b in rows], out=offsets[1:])
    buf = np.frombuffer(b"".join(b for _, b in rows), dtype=np.uint8)
    try:
        decoded = codec.decode(ports, buf, offsets)
        objects = decoded.objects()
        errors = decoded.error.tolist()
    except Exception as exc:  # a codec bug must not lose the other lines: use the per-message decoder
        print(f"stadtpuls decode: batch decoder failed ({exc!r}); decoding line by line", file=sys.stderr)
        objects = []
        errors = []
        for port, payload in rows:
            obj: dict[str, Any] | None
            try:
                obj = codec.decode_row(port, payload)
            except Exception as row_exc:
                obj = {"errors": [f"decoder error: {row_exc!r}"]}
            if set(obj) == {"errors"}:
                errors.append("; ".join(map(str, obj["errors"])))
                obj = None
            else:
                errors.append(None)
            objects.append(obj)
    for i, obj, err in zip(good, objects, errors, strict=True):
        out[i] = {"error": err or "decoder returned no data"} if obj is None else _js_numbers(obj)
    return out


def run(args: argparse.Namespace, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    try:
        get(args.codec)
    except UnknownCodec as exc:
        known = ", ".join(sorted(all_codecs()))
        print(f"stadtpuls decode: unknown codec {exc.codec_id!r}; known codecs: {known}", file=sys.stderr)
        return 2
    lines = [line for line in stdin.read().splitlines() if line.strip()]
    results = decode_lines(args.codec, lines)
    stdout.write(b"".join(orjson.dumps(r) + b"\n" for r in results))
    stdout.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stadtpuls decode", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
