"""``stadtpuls decode --codec ID | --codec-file FILE.js``: decode uplink payloads given as JSON lines, as one batch.

``--codec`` takes a built-in codec's id, or (through ``stadtpuls decode``, :mod:`ingest.decode_command`) a script
codec's stored in the database; ``--codec-file`` decodes with a script that is not stored.

Input (stdin), one object per line (blank lines are skipped)::

    {"f_port": 6, "bytes_hex": "0134012401012c0107320a"}

Output (stdout), one line per input line in the same order: the decoded object as the official decoder writes
it (numbers as JavaScript prints them, so ``3.0`` is ``3``), or ``{"error": "..."}`` for a line that is not
valid JSON, has a bad ``f_port`` or hex string, or that the codec rejects (unknown fPort, wrong length, ...; a
script's own error text). An unknown codec id, or a script that does not load, is reported on stderr with exit
status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import numpy as np
import orjson

from .base import Codec, CodecError, UnknownCodec
from .codec_registry import all_codecs, get
from .script import ScriptCodec

__all__ = ["add_arguments", "decode_lines", "main", "run", "setup"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--codec", metavar="ID", help="codec id (built-in or stored script), e.g. netvox/r718x")
    which.add_argument("--codec-file", metavar="FILE.js", help="a JavaScript codec script that is not stored")


def setup(parser: argparse.ArgumentParser) -> None:
    """Register a decode command of built-ins and script files (``stadtpuls decode`` adds the stored scripts:
    :mod:`ingest.decode_command`)."""
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


def decode_lines(codec: Codec | str, lines: Sequence[bytes]) -> list[dict[str, Any]]:
    """Decode input lines (see the module docstring) with a codec (or a built-in's id), one output per line."""
    if isinstance(codec, str):
        codec = get(codec)
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


Resolver = Callable[[argparse.Namespace], Codec]


def _codec(args: argparse.Namespace, resolve: Resolver | None) -> Codec:
    """A script file, a built-in, or what ``resolve`` finds for another id (raises UnknownCodec)."""
    if args.codec_file:
        with open(args.codec_file, encoding="utf-8") as f:
            return ScriptCodec(f"file:{args.codec_file}", f.read())
    try:
        return get(args.codec)
    except UnknownCodec:
        if resolve is None:
            raise
        return resolve(args)


def run(
    args: argparse.Namespace,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    resolve: Resolver | None = None,
) -> int:
    """``resolve``: finds the codecs that are neither built in nor a file (the stored scripts); problems it has
    finding them are :class:`CodecError` s."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    try:
        codec = _codec(args, resolve)
    except UnknownCodec as exc:
        known = ", ".join(sorted(all_codecs()))
        print(
            f"stadtpuls decode: unknown codec {exc.codec_id!r}; built-in codecs: {known}; script codecs are listed by"
            " `stadtpuls codecs list`",
            file=sys.stderr,
        )
        return 2
    except (OSError, UnicodeDecodeError) as exc:
        print(f"stadtpuls decode: cannot read {args.codec_file}: {exc}", file=sys.stderr)
        return 2
    except CodecError as exc:  # a script that does not load, a store that cannot be read
        print(f"stadtpuls decode: {exc}", file=sys.stderr)
        return 2
    lines = [line for line in stdin.read().splitlines() if line.strip()]
    results = decode_lines(codec, lines)
    stdout.write(b"".join(orjson.dumps(r) + b"\n" for r in results))
    stdout.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stadtpuls decode", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
