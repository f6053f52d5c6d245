"""Array helpers shared by the codecs: grouping a batch by layout, reading integer columns, building results.

A codec's ``decode`` usually goes like this::

    out = Builder(n, self.fields)                    # one column per declared field, nothing present yet
    for g in groups(buf, offsets, f_port):           # rows of equal (f_port, length) as a 2-D uint8 array
        if g.length != 11:
            out.fail(g.rows, "wrong length")
            continue
        out.set("Distance", g.rows, u16be(g.data, 5))
        out.set("Device", g.rows, DEVICE_LUT[g.data[:, 1]], where=DEVICE_KNOWN[g.data[:, 1]])
    return out.build()

``g.rows`` is a ``slice`` when the group is the whole batch (no gather, no scatter), else an index array.
Everything here is vectorised; nothing loops over rows in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .builder import Builder

__all__ = [
    "Builder",
    "Group",
    "byte_at",
    "fail_short",
    "field",
    "format_unique",
    "from_hex",
    "groups",
    "hex_column",
    "i8",
    "i16be",
    "i16le",
    "i32be",
    "i32le",
    "lengths",
    "lists_column",
    "lut",
    "pack",
    "row_count",
    "rows_of",
    "select",
    "subset",
    "take",
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


@dataclass
class Group:
    """Rows of a batch that share ``f_port`` (None when grouped by length only) and ``length``.

    ``data`` is a C-contiguous ``(rows, length)`` uint8 array; ``rows`` selects the group's rows in the batch.
    """

    f_port: int | None
    length: int
    rows: Rows
    data: np.ndarray

    @property
    def size(self) -> int:
        return int(self.data.shape[0])


def rows_of(buf: np.ndarray, offsets: np.ndarray, rows: np.ndarray, length: int) -> np.ndarray:
    """Gather ``rows`` (all of payload length ``length``) into a ``(len(rows), length)`` uint8 array."""
    return _gather(buf, np.asarray(offsets, dtype=np.int64)[rows], length)


def _gather(buf: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    out = np.empty((len(starts), length), dtype=np.uint8)
    for k in range(length):  # one gather per byte column: much faster than a 2-D fancy index
        out[:, k] = buf[starts + k]
    return out


def byte_at(buf: np.ndarray, offsets: np.ndarray, k: int) -> np.ndarray:
    """Byte ``k`` of every payload (uint8; 0 where the payload is shorter), without grouping the batch."""
    offsets = np.asarray(offsets, dtype=np.int64)
    at = offsets[:-1] + k
    if len(at) and int(np.min(offsets[1:] - at)) > 0:
        return buf[at]
    if len(buf) == 0:
        return np.zeros(len(at), dtype=np.uint8)
    out = buf[np.minimum(at, np.int64(len(buf) - 1))]
    out[at >= offsets[1:]] = 0
    return out


def groups(
    buf: np.ndarray, offsets: np.ndarray, f_port: np.ndarray | None = None, rows: np.ndarray | None = None
) -> Iterator[Group]:
    """Split a batch (or only its ``rows``: distinct indices) into groups of equal (f_port, length), in
    ascending order.

    A batch whose rows all share one layout and lie back to back in ``buf`` is returned as a single zero-copy
    group with ``rows = slice(0, n)``.
    """
    buf = np.asarray(buf, dtype=np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = row_count(offsets)
    ports = None if f_port is None else np.asarray(f_port, dtype=np.int64)
    if rows is not None and len(rows) == n:
        rows = None  # distinct row indices covering the whole batch
    if rows is not None:
        starts, lens = offsets[:-1][rows], np.diff(offsets)[rows]
        if ports is not None:
            ports = ports[rows]
    else:
        starts, lens = offsets[:-1], np.diff(offsets)
    if len(lens) == 0:
        return
    l0 = int(lens[0])
    if rows is None and bool((lens == l0).all()) and (ports is None or bool((ports == ports[0]).all())):
        p0 = None if ports is None else int(ports[0])
        start = int(offsets[0])
        if l0 > 0 and int(offsets[-1]) - start == n * l0:
            data = buf[start : start + n * l0].reshape(n, l0)
        else:
            data = _gather(buf, starts, l0)
        yield Group(p0, l0, slice(0, n), data)
        return
    if ports is None:
        key = lens
        small = int(lens.max()) < 1 << 16
    else:
        small = int(ports.min()) >= 0 and int(ports.max()) < 256 and int(lens.max()) < 256
        key = (ports << 8) | lens if small else (ports << 32) ^ lens  # the latter keeps any port distinct
    # Small keys are counted (linear time); others need a sort.
    keys = np.flatnonzero(np.bincount(key)) if small else np.unique(key)
    for k in keys.tolist():
        idx = np.flatnonzero(key == k)
        length = int(lens[idx[0]])
        port = None if ports is None else int(ports[idx[0]])
        yield Group(port, length, idx if rows is None else rows[idx], _gather(buf, starts[idx], length))


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
    strided view, so ``field(d, 7, ">i2") / 10`` costs a single pass."""
    dt = np.dtype(dtype)
    if a.strides[1:] != (1,):
        a = np.ascontiguousarray(a)
    return a[:, i : i + dt.itemsize].view(dt)[:, 0]


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


def take(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``table[codes]`` for a lookup table; when every code is the same (a batch of one device model, one
    frame type) a fill replaces the per-row gather, which for object tables is the costly part."""
    if len(codes) and bool((codes == codes[0]).all()):
        out = np.empty(len(codes), dtype=table.dtype)
        out.fill(table[codes[0]])
        return out
    return table[codes]


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


def lists_column(a: np.ndarray) -> np.ndarray:
    """Every row of a 2-D array as a Python list, in an object array (for ``bytes``-like JSON fields)."""
    return np.fromiter(a.tolist(), dtype=object, count=a.shape[0])


def from_hex(text: str) -> bytes:
    """Bytes of a hex string; raises ValueError on odd length or a non-hex digit."""
    return bytes.fromhex(text)


def select(rows: Rows, mask: np.ndarray) -> Rows:
    """The batch rows of a group's rows where ``mask`` (over the group) is True."""
    if isinstance(rows, slice):
        return np.flatnonzero(mask) + (rows.start or 0)
    return rows[mask]


def subset(rows: Rows, data: np.ndarray, mask: np.ndarray) -> tuple[Rows, np.ndarray]:
    """The batch rows and the 2-D data of a group's rows where ``mask`` is True (all of them: no copy)."""
    idx = np.flatnonzero(mask)
    if len(idx) == len(mask):
        return rows, data
    sub_rows = idx + (rows.start or 0) if isinstance(rows, slice) else rows[idx]
    return sub_rows, np.take(data, idx, axis=0)


def fail_short(out: Builder, port: np.ndarray, lens: np.ndarray, short: np.ndarray, need: Mapping[int, int]) -> None:
    """Fail the ``short`` rows of a whole batch (``need``: minimum length by fPort) as wrong length."""
    if not short.any():
        return
    key = (port[short] << 32) | lens[short]
    for k in np.unique(key).tolist():
        p, length = k >> 32, k & 0xFFFFFFFF
        where = short & (port == p) & (lens == length)
        out.fail(slice(None), wrong_length(length, f"at least {need[p]}"), where=where)


def wrong_length(got: int, expected: str) -> str:
    """The error reason for a payload of the wrong size (``expected`` like ``"11"`` or ``"at least 5"``)."""
    return f"wrong length: {got} bytes, expected {expected}"
