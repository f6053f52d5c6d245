"""Array helpers shared by the codecs: reading integer columns, lookup tables, text columns, packing frames.

A fixed-layout codec's ``decode`` usually goes like this (see also :mod:`ingest.codecs.row_classes`)::

    out = Builder(n, self.fields)                      # one column per declared field, nothing present yet
    code = PORTS(f_port)                               # fPort -> small code, one lookup per row
    rows, d = frames(buf, offsets, lens, 11)           # the 11-byte frames as a 2-D uint8 array
    out.set("Distance", rows, u16be(d, 5), where=code == 1)
    out.set("Device", rows, Lookup(DEVICE_LUT, d[:, 1].copy()), where=DEVICE_KNOWN[d[:, 1]])
    return out.build()

``rows`` is ``slice(None)`` when the frames are the whole batch (no gather, no scatter), else an index array.
Everything here is vectorised; nothing loops over rows in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .builder import Builder

__all__ = [
    "Builder",
    "Rows",
    "field",
    "format_unique",
    "hex_column",
    "i8",
    "i16be",
    "i16le",
    "i32be",
    "i32le",
    "lengths",
    "lut",
    "pack",
    "row_count",
    "subset",
    "u16be",
    "u16le",
    "u32be",
    "u32le",
    "volt_lut",
    "wrong_length",
]

Rows = slice | np.ndarray


# --- batches --------------------------------------------------------------------------------------


def lengths(offsets: np.ndarray) -> np.ndarray:
    """Payload length of every row (int64)."""
    return np.diff(np.asarray(offsets, dtype=np.int64))


def row_count(offsets: np.ndarray) -> int:
    return max(len(offsets) - 1, 0)


def pack(parts: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Build ``(buf, offsets)`` for n rows from ``(rows, data)`` parts, ``data`` being 2-D uint8 arrays.

    Every row index in ``0..n-1`` must appear in exactly one part. With one part covering all rows in order
    this is a plain reshape.
    """
    if len(parts) == 1:
        rows, data = parts[0]
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if len(rows) == n and (n == 0 or (rows[0] == 0 and bool((np.diff(rows) == 1).all()))):
            width = data.shape[1]
            return data.reshape(-1), np.arange(n + 1, dtype=np.int64) * width
    lens = np.zeros(n, dtype=np.int64)
    for rows, data in parts:
        lens[rows] = data.shape[1]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    buf = np.empty(int(offsets[-1]), dtype=np.uint8)
    for rows, data in parts:
        width = data.shape[1]
        if width:
            buf[offsets[rows][:, None] + np.arange(width, dtype=np.int64)] = data
    return buf, offsets


# --- integer columns of a 2-D uint8 array ------------------------------------------------------


def field(a: np.ndarray, i: int, dtype: str) -> np.ndarray:
    """Bytes ``i ..`` of every row read as one number of ``dtype`` (e.g. ``">i2"``, ``"<u4"``): a zero-copy
    strided view when the row's bytes are adjacent, so ``field(d, 7, ">i2") / 10`` costs a single pass."""
    dt = np.dtype(dtype)
    width = dt.itemsize
    if a.strides[1:] == (1,) or width == 1:
        return a[:, i : i + width].view(dt)[:, 0]
    # The bytes of a row are not adjacent (a column-wise gather): put each number together from its bytes,
    # which is cheaper than copying the array into row order.
    value = np.zeros(len(a), dtype=f"u{width}")
    for j in range(width):
        value |= a[:, i + j].astype(value.dtype) << (8 * (width - 1 - j) if dt.str[0] == ">" else 8 * j)
    return value.view(dt.newbyteorder("="))


def i8(a: np.ndarray, i: int) -> np.ndarray:
    return a[:, i].view(np.int8).astype(np.int64)


def u16be(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, ">u2").astype(np.int64)


def u16le(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, "<u2").astype(np.int64)


def i16be(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, ">i2").astype(np.int64)


def i16le(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, "<i2").astype(np.int64)


def u32be(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, ">u4").astype(np.int64)


def u32le(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, "<u4").astype(np.int64)


def i32be(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, ">i4").astype(np.int64)


def i32le(a: np.ndarray, i: int) -> np.ndarray:
    return field(a, i, "<i4").astype(np.int64)


# --- strings and JSON values ----------------------------------------------------------------------


def lut(values: Sequence[Any], size: int = 256) -> np.ndarray:
    """An object lookup table of ``size`` entries (missing entries are None): ``lut(...)[byte_array]``."""
    table = np.empty(size, dtype=object)
    for i, v in enumerate(values):
        table[i] = v
    return table


def volt_lut() -> np.ndarray:
    """Netvox battery byte -> ``Volt`` value: b/10 if bit 7 is clear, else ``"<(b & 0x7F)/10>(low battery)"``
    with the number in shortest decimal form (``"3.2"``, ``"3"``)."""
    table = np.empty(256, dtype=object)
    for b in range(256):
        if b < 0x80:
            table[b] = b / 10
        else:
            x = b & 0x7F
            text = str(x // 10) if x % 10 == 0 else repr(x / 10)
            table[b] = f"{text}(low battery)"
    return table


_HEX_LOWER = np.array([ord(c) for c in "0123456789abcdef"], dtype=np.uint32)
_HEX_UPPER = np.array([ord(c) for c in "0123456789ABCDEF"], dtype=np.uint32)


def hex_column(a: np.ndarray, upper: bool = False, sep: str = "") -> np.ndarray:
    """Every row of a 2-D uint8 array as a hex string (numpy ``U`` array): 2 digits per byte, each followed by
    ``sep`` when given (``sep=" "`` gives ``"28 ff 64 "``)."""
    digits = _HEX_UPPER if upper else _HEX_LOWER
    n, width = a.shape
    step = 2 + len(sep)
    chars = np.empty((n, width * step), dtype=np.uint32)
    chars[:, 0::step] = digits[a >> 4]
    chars[:, 1::step] = digits[a & 0x0F]
    for k, c in enumerate(sep):
        chars[:, 2 + k :: step] = ord(c)
    if width == 0:
        return np.full(n, "", dtype="U1")
    return chars.view(f"U{width * step}").reshape(n)


def format_unique(keys: np.ndarray, fmt: Callable[[int], Any]) -> np.ndarray:
    """``fmt(key)`` for every integer key, calling ``fmt`` once per distinct key (object array)."""
    uniq, inverse = np.unique(np.asarray(keys, dtype=np.int64), return_inverse=True)
    table = np.empty(len(uniq), dtype=object)
    for i, k in enumerate(uniq.tolist()):
        table[i] = fmt(k)
    return table[inverse.reshape(-1)]


def subset(rows: Rows, data: np.ndarray, mask: np.ndarray) -> tuple[Rows, np.ndarray]:
    """The batch rows and the 2-D data of a group's rows where ``mask`` is True (all of them: no copy)."""
    idx = np.flatnonzero(mask)
    if len(idx) == len(mask):
        return rows, data
    sub_rows = idx + (rows.start or 0) if isinstance(rows, slice) else rows[idx]
    return sub_rows, np.take(data, idx, axis=0)


def wrong_length(got: int, expected: str) -> str:
    """The error reason for a payload of the wrong size (``expected`` like ``"11"`` or ``"at least 5"``)."""
    return f"wrong length: {got} bytes, expected {expected}"
