"""PostgreSQL binary COPY streams built from numpy columns.

The binary COPY format is a header, then per row an int16 field count and per field an int32 byte length
(-1 for NULL) followed by the value in network byte order, then an int16 -1 trailer. Here every field of every
row is written with array operations: the row offsets come from a cumulative sum of the field lengths, fixed-width
values are scattered into the output as big-endian byte matrices, variable-length values (text, bytea) as one
gather from a flat buffer. Python work per batch does not grow with the number of rows.

Column kinds and the numpy input each takes:

=============== ============================================================
``int2/4/8``    integer array
``float4/8``    float array
``bool``        bool array
``timestamptz`` ``datetime64[us]`` array (UTC)
``uuid``        ``uint8`` array of shape (n, 16)
``text/bytea``  :class:`Var` (flat ``uint8`` buffer + offsets) or an ``S`` array
``jsonb``       the same, each value the jsonb binary format: a version byte 1, then the JSON text
=============== ============================================================

Each column may carry a NULL mask (True = NULL).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = ["HEADER", "Field", "Var", "copy_fields", "encode", "var_from_strings"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in µs since the Unix epoch
_is_none = partial(operator.is_, None)  # per value in C, without a generator frame
_FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8", "bool": "u1"}


@dataclass
class Var:
    """Variable-length values: value i is ``buf[offsets[i]:offsets[i + 1]]``."""

    buf: np.ndarray
    offsets: np.ndarray

    def take(self, idx: np.ndarray) -> Var:
        """The values at ``idx`` (any order, repeats allowed) as a new compact Var."""
        starts = self.offsets[:-1][idx]
        lens = self.offsets[1:][idx] - starts
        offsets = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        total = int(offsets[-1])
        src = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets[:-1], lens)
        return Var(self.buf[src], offsets)


def var_from_strings(values: Sequence[str | bytes | None]) -> tuple[Var, np.ndarray]:
    """Encode Python strings (UTF-8) into a Var; returns it and the NULL mask (None values)."""
    encoded = [b"" if v is None else (v if isinstance(v, bytes) else v.encode()) for v in values]
    null = np.fromiter(map(_is_none, values), dtype=bool, count=len(values))
    lens = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return Var(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets), null


@dataclass
class Field:
    """One column of a COPY: ``kind`` is a PostgreSQL type name from the module docstring."""

    kind: str
    values: np.ndarray | Var
    null: np.ndarray | None = None


def copy_fields(
    columns: Sequence[tuple[str, str]], values: Mapping[str, np.ndarray | Var | tuple[np.ndarray | Var, np.ndarray]]
) -> list[Field]:
    """The fields of a COPY of ``columns`` (``(name, kind)`` pairs, in COPY order, e.g. a table's columns in
    :mod:`stadtpuls.schema`): ``values[name]`` is the column, or the pair (column, NULL mask)."""
    out = []
    for name, kind in columns:
        v = values[name]
        out.append(Field(kind, v[0], v[1]) if isinstance(v, tuple) else Field(kind, v))
    return out


def _fixed_bytes(f: Field, n: int) -> np.ndarray:
    """The values of a fixed-width field as an (n, width) uint8 matrix in network byte order."""
    v = f.values
    assert isinstance(v, np.ndarray)
    if f.kind == "timestamptz":
        us = v.astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
        return us.astype(">i8").view(np.uint8).reshape(n, 8)
    if f.kind == "uuid":
        return np.ascontiguousarray(v, dtype=np.uint8).reshape(n, 16)
    dtype = _FIXED[f.kind]
    arr = v.astype(bool) if f.kind == "bool" else v
    return np.ascontiguousarray(arr.astype(dtype)).view(np.uint8).reshape(n, -1)


def _as_var(values: np.ndarray | Var) -> Var:
    if isinstance(values, Var):
        return values
    if values.dtype.kind == "S":
        n, width = len(values), values.dtype.itemsize
        mat = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
        nonzero = mat != 0
        lens = np.where(nonzero.any(axis=1), width - np.argmax(nonzero[:, ::-1], axis=1), 0).astype(np.int64)
        keep = np.arange(width) < lens[:, None]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        return Var(mat[keep], offsets)
    raise TypeError(f"text/bytea columns need a Var or an S array, got {values.dtype}")


def encode(fields: Sequence[Field], n: int, *, header: bool = True, trailer: bool = True) -> bytes:
    """The binary COPY stream of n rows with the given fields (in the COPY's column order)."""
    if n == 0:
        return (HEADER if header else b"") + (b"\xff\xff" if trailer else b"")
    prepared: list[tuple[np.ndarray, np.ndarray | Var, np.ndarray]] = []  # (data lengths, data, null)
    for f in fields:
        null = np.zeros(n, dtype=bool) if f.null is None else np.asarray(f.null, dtype=bool)
        data: np.ndarray | Var
        if f.kind in ("text", "bytea", "jsonb"):
            data = _as_var(f.values)
            lens = np.diff(data.offsets)
        else:
            data = _fixed_bytes(f, n)
            lens = np.full(n, data.shape[1], dtype=np.int64)
        lens = np.where(null, 0, lens)
        prepared.append((lens, data, null))
    row_len = np.full(n, 2, dtype=np.int64)
    for lens, _, _ in prepared:
        row_len += 4 + lens
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(row_len[:-1], out=starts[1:])
    head = len(HEADER) if header else 0
    starts += head
    total = head + int(row_len.sum()) + (2 if trailer else 0)
    out = np.empty(total, dtype=np.uint8)
    if header:
        out[:head] = np.frombuffer(HEADER, dtype=np.uint8)
    if trailer:
        out[-2:] = 0xFF
    count = np.frombuffer(np.array([len(fields)], dtype=">i2").tobytes(), dtype=np.uint8)
    out[starts[:, None] + np.arange(2)] = count
    pos = starts + 2
    for lens, data, null in prepared:
        length = np.where(null, -1, lens).astype(">i4").view(np.uint8).reshape(n, 4)
        out[pos[:, None] + np.arange(4)] = length
        pos = pos + 4
        if isinstance(data, Var):
            _scatter_var(out, pos, data, lens, null)
        else:
            rows = ~null
            if rows.all():
                out[pos[:, None] + np.arange(data.shape[1])] = data
            elif rows.any():
                out[pos[rows][:, None] + np.arange(data.shape[1])] = data[rows]
        pos = pos + lens
    return out.tobytes()


def _scatter_var(out: np.ndarray, pos: np.ndarray, data: Var, lens: np.ndarray, null: np.ndarray) -> None:
    total = int(lens.sum())
    if total == 0:
        return
    src_start = data.offsets[:-1]
    cum = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=cum[1:])
    k = np.arange(total, dtype=np.int64)
    dest = k + np.repeat(pos - cum, lens)
    src = k + np.repeat(src_start - cum, lens)
    out[dest] = data.buf[src]
