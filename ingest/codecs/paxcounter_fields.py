"""Field encodings of the ESP32-Paxcounter packed format: one :class:`Reader` per encoding, used by the batch
decoder (2-D arrays), the per-message reference decoder and the encoder alike.

All integers are little-endian except ``temp`` (the BME temperature, big-endian). ``i32`` is the official
decoder's "uint32", assembled with 32-bit signed bit operations, so values >= 2**31 come out negative;
``uptime`` ORs its eight bytes into 32 bits (byte k shifted by 8 * k mod 32) with the same signed result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .arrays import i16be, i16le, i32le, u16le, u32le
from .base import FieldKind

__all__ = ["FLAGS", "PAYLOADMASK", "READERS", "Reader"]

#: Bitmap keys with their bit numbers (bit 1 of ``flags`` is not reported).
FLAGS = (
    ("adr", 7),
    ("screensaver", 6),
    ("screen", 5),
    ("countermode", 4),
    ("blescan", 3),
    ("antenna", 2),
    ("reserved", 0),
)
PAYLOADMASK = (
    ("battery", 7),
    ("sensor3", 6),
    ("sensor2", 5),
    ("sensor1", 4),
    ("gps", 3),
    ("bme", 2),
    ("reserved", 1),
    ("counter", 0),
)


@dataclass(frozen=True)
class Reader:
    width: int
    kind: FieldKind
    read: Callable[[np.ndarray, int], Any]  # (2-D uint8 array, column offset) -> values (or dict for bitmaps)
    read_row: Callable[[bytes], Any]  # exactly ``width`` bytes -> value
    write: Callable[[Any, int], np.ndarray]  # (values, n) -> (n, width) uint8; ValueError when out of range


def _le_bytes(raw: np.ndarray, width: int, big_endian: bool = False) -> np.ndarray:
    out = np.empty((len(raw), width), dtype=np.uint8)
    for b in range(width):
        shift = 8 * (width - 1 - b) if big_endian else 8 * b
        out[:, b] = (raw >> shift) & 0xFF
    return out


def _ints(values: Any, n: int, lo: int, hi: int, scale: float = 1) -> np.ndarray:
    v = np.asarray(values)
    if len(v) != n:
        raise ValueError(f"has {len(v)} values, expected {n}")
    if v.dtype.kind not in "iubf" or (v.dtype.kind == "f" and not np.isfinite(v).all()):
        raise ValueError("values must be finite numbers")
    if scale == 1:
        if v.dtype.kind == "f" and not np.array_equal(v, np.round(v)):
            raise ValueError("values must be whole numbers")
        raw = v.astype(np.int64)
    else:
        raw = np.round(v.astype(np.float64) * scale).astype(np.int64)
    if raw.size and (raw.min() < lo or raw.max() > hi):
        raise ValueError(f"values must lie in {lo / scale:g}..{hi / scale:g}")
    return raw


def _int_reader(width: int, signed: bool, fold32: bool = False) -> Reader:
    def read(a: np.ndarray, i: int) -> np.ndarray:
        if width == 1:
            return a[:, i].astype(np.int64)
        if width == 2:
            return i16le(a, i) if signed else u16le(a, i)
        return i32le(a, i)

    def read_row(b: bytes) -> int:
        return int.from_bytes(b, "little", signed=signed or fold32)

    lo = -(1 << (8 * width - 1)) if signed or fold32 else 0
    hi = (1 << (8 * width - 1)) - 1 if signed or fold32 else (1 << (8 * width)) - 1

    def write(values: Any, n: int) -> np.ndarray:
        return _le_bytes(_ints(values, n, lo, hi), width)

    return Reader(width, "int", read, read_row, write)


def _scaled(width: int, signed: bool, scale: int, big_endian: bool = False) -> Reader:
    def read(a: np.ndarray, i: int) -> np.ndarray:
        if width == 4:
            raw = i32le(a, i)
        elif big_endian:
            raw = i16be(a, i)
        else:
            raw = i16le(a, i) if signed else u16le(a, i)
        return raw / scale

    def read_row(b: bytes) -> float:
        return int.from_bytes(b, "big" if big_endian else "little", signed=signed) / scale

    lo = -(1 << (8 * width - 1)) if signed else 0
    hi = (1 << (8 * width - 1)) - 1 if signed else (1 << (8 * width)) - 1

    def write(values: Any, n: int) -> np.ndarray:
        return _le_bytes(_ints(values, n, lo, hi, scale), width, big_endian)

    return Reader(width, "float", read, read_row, write)


def _uptime_read(a: np.ndarray, i: int) -> np.ndarray:
    v = u32le(a, i) | u32le(a, i + 4)
    returned: np.ndarray = v - ((v & 0x80000000) << 1)
    return returned


def _uptime_row(b: bytes) -> int:
    v = int.from_bytes(b[:4], "little") | int.from_bytes(b[4:8], "little")
    return v - (1 << 32) if v & 0x80000000 else v


def _uptime_write(values: Any, n: int) -> np.ndarray:
    return _le_bytes(_ints(values, n, 0, (1 << 31) - 1), 8)


def _bitmap(bits: tuple[tuple[str, int], ...]) -> Reader:
    def read(a: np.ndarray, i: int) -> dict[str, np.ndarray]:
        col = a[:, i].astype(np.int64)
        return {name: (col >> bit) & 1 for name, bit in bits}

    def read_row(b: bytes) -> dict[str, int]:
        return {name: (b[0] >> bit) & 1 for name, bit in bits}

    def write(values: Any, n: int) -> np.ndarray:
        byte = np.zeros(n, dtype=np.int64)
        for name, bit in bits:
            try:
                byte |= _ints(values[name], n, 0, 1) << bit
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return byte.astype(np.uint8).reshape(n, 1)

    return Reader(1, "int", read, read_row, write)


def _version_read(a: np.ndarray, i: int) -> np.ndarray:
    chars = a[:, i : i + 10].astype(np.uint32)
    chars[np.cumsum(chars == 0, axis=1) > 0] = 0  # the string ends at the first NUL
    return np.ascontiguousarray(chars).view("U10").reshape(-1)


def _version_row(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("latin-1")


def _version_write(values: Any, n: int) -> np.ndarray:
    v = list(values)
    if len(v) != n:
        raise ValueError(f"has {len(v)} values, expected {n}")
    out = np.zeros((n, 10), dtype=np.uint8)
    for r, text in enumerate(v):
        if not isinstance(text, str) or "\0" in text:
            raise ValueError("values must be strings without NUL")
        try:
            raw = text.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("values must be Latin-1 text") from None
        if len(raw) > 10:
            raise ValueError("values must be at most 10 characters")
        out[r, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


READERS: dict[str, Reader] = {
    "u8": _int_reader(1, False),
    "u16": _int_reader(2, False),
    "i16": _int_reader(2, True),
    "i32": _int_reader(4, False, fold32=True),
    "alt": _int_reader(2, True),
    "latlng": _scaled(4, True, 1_000_000),
    "hdop": _scaled(2, False, 100),
    "temp": _scaled(2, True, 100, big_endian=True),
    "p10": _scaled(2, False, 10),
    "u100": _scaled(2, False, 100),
    "uptime": Reader(8, "int", _uptime_read, _uptime_row, _uptime_write),
    "flags": _bitmap(FLAGS),
    "payloadmask": _bitmap(PAYLOADMASK),
    "version": Reader(10, "str", _version_read, _version_row, _version_write),
}
