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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Column, Decoded, FieldSpec

__all__ = [
    "Builder",
    "Group",
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
    "u16be",
    "u16le",
    "u32be",
    "u32le",
    "volt_lut",
    "wrong_length",
]

Rows = slice | np.ndarray

_DTYPES: dict[str, Any] = {"float": np.float64, "int": np.int64, "bool": np.bool_}


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
    starts = np.asarray(offsets, dtype=np.int64)[rows]
    if length == 0:
        return np.empty((len(starts), 0), dtype=np.uint8)
    return buf[starts[:, None] + np.arange(length, dtype=np.int64)]


def groups(buf: np.ndarray, offsets: np.ndarray, f_port: np.ndarray | None = None) -> Iterator[Group]:
    """Split a batch into groups of equal (f_port, length), largest first in no particular guarantee.

    A batch whose rows all share one layout and lie back to back in ``buf`` is returned as a single zero-copy
    group with ``rows = slice(0, n)``.
    """
    buf = np.asarray(buf, dtype=np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64)
    n = row_count(offsets)
    if n == 0:
        return
    lens = np.diff(offsets)
    ports = None if f_port is None else np.asarray(f_port, dtype=np.int64)
    l0 = int(lens[0])
    same_len = bool((lens == l0).all())
    same_port = ports is None or bool((ports == ports[0]).all())
    if same_len and same_port:
        p0 = None if ports is None else int(ports[0])
        start = int(offsets[0])
        if l0 > 0 and int(offsets[-1]) - start == n * l0:
            data = buf[start : start + n * l0].reshape(n, l0)
        else:
            data = rows_of(buf, offsets, np.arange(n), l0)
        yield Group(p0, l0, slice(0, n), data)
        return
    if ports is None:
        key = lens
    else:
        # ports are small non-negative ints in practice; the key keeps any value distinct.
        key = (ports << 32) ^ lens
    for k in np.unique(key):
        rows = np.flatnonzero(key == k)
        length = int(lens[rows[0]])
        port = None if ports is None else int(ports[rows[0]])
        yield Group(port, length, rows, rows_of(buf, offsets, rows, length))


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


def i8(a: np.ndarray, i: int) -> np.ndarray:
    return a[:, i].view(np.int8).astype(np.int64)


def u16be(a: np.ndarray, i: int) -> np.ndarray:
    return (a[:, i].astype(np.int64) << 8) | a[:, i + 1]


def u16le(a: np.ndarray, i: int) -> np.ndarray:
    return (a[:, i + 1].astype(np.int64) << 8) | a[:, i]


def i16be(a: np.ndarray, i: int) -> np.ndarray:
    v = u16be(a, i)
    return v - ((v & 0x8000) << 1)


def i16le(a: np.ndarray, i: int) -> np.ndarray:
    v = u16le(a, i)
    return v - ((v & 0x8000) << 1)


def u32be(a: np.ndarray, i: int) -> np.ndarray:
    return (
        (a[:, i].astype(np.int64) << 24)
        | (a[:, i + 1].astype(np.int64) << 16)
        | (a[:, i + 2].astype(np.int64) << 8)
        | a[:, i + 3]
    )


def u32le(a: np.ndarray, i: int) -> np.ndarray:
    return (
        (a[:, i + 3].astype(np.int64) << 24)
        | (a[:, i + 2].astype(np.int64) << 16)
        | (a[:, i + 1].astype(np.int64) << 8)
        | a[:, i]
    )


def i32be(a: np.ndarray, i: int) -> np.ndarray:
    v = u32be(a, i)
    return v - ((v & 0x80000000) << 1)


def i32le(a: np.ndarray, i: int) -> np.ndarray:
    v = u32le(a, i)
    return v - ((v & 0x80000000) << 1)


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


def lists_column(a: np.ndarray) -> np.ndarray:
    """Every row of a 2-D array as a Python list, in an object array (for ``bytes``-like JSON fields)."""
    return np.fromiter(a.tolist(), dtype=object, count=a.shape[0])


def from_hex(text: str) -> bytes:
    """Bytes of a hex string; raises ValueError on odd length or a non-hex digit."""
    return bytes.fromhex(text)


# --- building a Decoded ---------------------------------------------------------------------------


class Builder:
    """Collects the columns and errors of a batch of n rows; :meth:`build` returns the :class:`Decoded`.

    Every declared field gets a column (``float`` -> float64, ``int`` -> int64, ``bool`` -> bool, anything
    else -> object). ``set`` writes values for some rows and marks them present; ``where`` narrows the rows;
    ``null`` marks rows whose value is JSON ``null``. ``fail`` marks rows as errors with a reason. ``raw``
    holds codec-private arrays for ``domain()`` (they are not part of the official object).
    """

    def __init__(self, n: int, fields: Sequence[FieldSpec]) -> None:
        self.n = n
        self.ok = np.ones(n, dtype=bool)
        self.error = np.empty(n, dtype=object)  # all None
        self.raw: dict[str, np.ndarray] = {}
        self._dtypes = {f.name: _DTYPES.get(f.kind, object) for f in fields}
        self.columns: dict[str, Column] = {}

    def _column(self, name: str) -> Column:
        col = self.columns.get(name)
        if col is None:
            col = Column(np.empty(self.n, dtype=self._dtypes[name]), np.zeros(self.n, dtype=bool))
            self.columns[name] = col
        return col

    def set(
        self,
        name: str,
        rows: Rows,
        values: Any,
        where: np.ndarray | None = None,
        null: np.ndarray | None = None,
    ) -> None:
        if where is not None:
            if not where.any():
                return
            if where.all():
                where = None
        whole = isinstance(rows, slice) and rows == slice(0, self.n)
        if whole and null is None and name not in self.columns and self.n:
            # The group is the whole batch and the column is new: adopt a (converted) copy of the values.
            dtype = self._dtypes[name]
            if not isinstance(values, np.ndarray):
                vals = np.empty(self.n, dtype=dtype)
                vals.fill(values)  # np.full would make a new str object per row
            else:
                vals = np.broadcast_to(values, (self.n,)).astype(dtype)
            present = np.ones(self.n, dtype=bool) if where is None else where.copy()
            self.columns[name] = Column(vals, present)
            return
        col = self._column(name)
        if null is not None:
            if col.null is None:
                col.null = np.zeros(self.n, dtype=bool)
            self._put(col.null, rows, null, where)
        self._put(col.values, rows, values, where)
        self._put(col.present, rows, True, where)

    def set_raw(self, name: str, rows: Rows, values: Any, dtype: Any = np.float64) -> None:
        """Write codec-private values (zero where never written) into ``raw[name]``."""
        arr = self.raw.get(name)
        if arr is None:
            arr = self.raw[name] = np.zeros(self.n, dtype=dtype)
        arr[rows] = values

    def fail(self, rows: Rows, reason: str, where: np.ndarray | None = None) -> None:
        self._put(self.ok, rows, False, where)
        self._put(self.error, rows, reason, where)

    @staticmethod
    def _put(target: np.ndarray, rows: Rows, values: Any, where: np.ndarray | None) -> None:
        if where is None:
            target[rows] = values
            return
        if isinstance(rows, slice):
            np.copyto(target[rows], values, where=where, casting="unsafe")
            return
        sel = rows[where]
        if isinstance(values, np.ndarray) and values.ndim:
            values = values[where]
        target[sel] = values

    def build(self) -> Decoded:
        for name in self._dtypes:
            self._column(name)
        columns = {name: self.columns[name] for name in self._dtypes}
        if not self.ok.all():
            for col in columns.values():
                col.present &= self.ok
        return Decoded(self.n, self.ok, self.error, columns, self.raw)


def select(rows: Rows, mask: np.ndarray) -> Rows:
    """The batch rows of a group's rows where ``mask`` (over the group) is True."""
    if isinstance(rows, slice):
        return np.flatnonzero(mask) + (rows.start or 0)
    return rows[mask]


def wrong_length(got: int, expected: str) -> str:
    """The error reason for a payload of the wrong size (``expected`` like ``"11"`` or ``"at least 5"``)."""
    return f"wrong length: {got} bytes, expected {expected}"
