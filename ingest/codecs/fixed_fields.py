"""The kinds of field of a fixed-layout frame (see :mod:`ingest.codecs.fixed_layout`).

Every kind says where its value sits and how raw bits become the value, and derives the three paths from
that: ``read`` (every row of a :class:`~ingest.codecs.fixed_view.View`: an array, a :class:`Lookup` or a
:class:`Later`), ``row_reader`` (a function of one payload, made once per field) and ``write`` (the encoder).
:class:`Num` is a number (offset, type, mask, shift, ``(raw * mul + add) / div``); :class:`Flag` a bit;
:class:`Label` a text by number; :class:`Table` a number by number; :class:`Marker` a text where a bit is set;
:class:`Hex` and :class:`Version` texts of several bytes. A codec may add a kind of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from .arrays import format_unique, hex_column, lut
from .base import EncodeError
from .builder import Builder
from .encoding import be_bytes, dotted_bytes, le_bytes, to_codes, to_ints
from .fixed_view import Cond, View
from .lazy_columns import Later, Lookup
from .row_classes import one_of

__all__ = ["ABSENT", "OPTIONAL", "REQUIRED", "Field", "Flag", "Hex", "Label", "Marker", "Num", "Table", "Version"]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: ``default`` of a field that ``encode()`` input must give (wherever its conditions hold).
REQUIRED: Any = _Sentinel("REQUIRED")
#: ``default`` of a field that ``encode()`` input may leave out: its bits stay as they are.
OPTIONAL: Any = _Sentinel("OPTIONAL")


@dataclass(frozen=True)
class Field:
    """What every field kind has: its output key, the conditions under which a frame has it, when its
    value is JSON null instead, and its ``encode()`` default (:data:`REQUIRED`, :data:`OPTIONAL` or a
    value). ``encoded`` False: derived from other fields, not an ``encode()`` input."""

    name: str
    when: tuple[Cond, ...] = field(default=(), kw_only=True)
    null_when: tuple[Cond, ...] = field(default=(), kw_only=True)
    default: Any = field(default=REQUIRED, kw_only=True)
    encoded: bool = field(default=True, kw_only=True)

    @property
    def extent(self) -> int:
        """Bytes a frame needs for this field."""
        return 0

    def read(self, view: View) -> Any:
        """Values for every row of ``view``: an array, a :class:`Lookup` or a :class:`Later`."""
        raise NotImplementedError

    def present(self, view: View) -> np.ndarray | None:
        """Rows that have the key at all (None: every row the conditions select)."""
        return None

    def null(self, view: View) -> np.ndarray | None:
        return None

    def read_row(self, b: bytes) -> Any:
        """The value in one payload; :data:`ABSENT` when the frame has no such key."""
        raise NotImplementedError

    @property
    def row_reader(self) -> Callable[[bytes], Any]:
        """``read_row`` as a function of the payload."""
        return self.read_row

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (one per row of ``rows``) into ``frames``."""
        raise NotImplementedError

    def put(self, out: Builder, view: View, where: np.ndarray | None) -> None:
        """Decode into ``out`` for the rows of ``view`` where ``where`` holds."""
        present = self.present(view)
        if present is not None:
            where = present if where is None else where & present
        if where is not None and not where.any():
            return
        out.set(self.name, view.rows, self.read(view), where=where, null=self.null_of(view))

    def null_of(self, view: View) -> np.ndarray | None:
        """Rows whose value is JSON null: the kind's own (:meth:`null`) or where ``null_when`` holds."""
        null = self.null(view)
        if self.null_when:
            nulls = view.test(self.null_when)
            null = nulls if null is None else null | nulls
        return null

    def reads_like(self, other: Field) -> bool:
        """``other`` has the same key and reads the same values from the same bytes (its nulls, ``encode()``
        default and conditions may differ): a layout reads such fields of several groups once."""
        return type(other) is type(self) and self._value_part() == other._value_part()

    def _value_part(self) -> Field:
        return replace(self, when=(), null_when=(), default=REQUIRED, encoded=True)


ABSENT: Any = _Sentinel("ABSENT")


def _put_bits(frames: np.ndarray, rows: np.ndarray, at: int, dtype: np.dtype, mask: int, word: np.ndarray) -> None:
    """Write ``word`` (ints) under ``mask`` into the ``dtype``-sized number at byte ``at`` of ``rows``."""
    width = dtype.itemsize
    big = dtype.str[0] != "<"
    to_bytes = be_bytes if big else le_bytes
    keep = to_bytes(np.array([~mask & ((1 << (8 * width)) - 1)]), width)[0]
    new = to_bytes(word & mask, width)
    frames[rows, at : at + width] = (frames[rows, at : at + width] & keep) | new


def _bits(dtype: np.dtype) -> int:
    return 8 * dtype.itemsize


@dataclass(frozen=True)
class Num(Field):
    """A number: ``raw = (number at byte at & mask) >> shift``, value ``(raw * mul + add) / div`` (no division
    when ``div`` is 1: an integer). ``type`` is a numpy type string (``"u1"``, ``">i2"``, ``"<u4"``)."""

    at: int = 0
    type: str = "u1"
    mask: int | None = None
    shift: int = 0
    mul: int = 1
    add: int = 0
    div: int = 1

    @property
    def extent(self) -> int:
        return self.at + np.dtype(self.type).itemsize

    def _raw(self, view: View) -> np.ndarray:
        raw = view.number(self.at, self._dtype)
        if self.mask is not None:
            raw = raw & raw.dtype.type(self.mask)
        if self.shift:
            raw = raw >> raw.dtype.type(self.shift)
        return raw

    def read(self, view: View) -> Any:
        """(Kept per view: a derived field may read it again.)"""
        values = view.values.get(id(self))
        if values is None:
            values = view.values[id(self)] = self._read(view)
        return values

    def _read(self, view: View) -> Any:
        raw = self._raw(view)
        if self.mul != 1 or self.add:
            raw = raw.astype(np.int64)
            if self.mul != 1:
                raw *= self.mul
            if self.add:
                raw += self.add
        if self.div != 1:
            return raw / self.div
        if not raw.flags.owndata or raw.dtype.byteorder not in "=|":
            return raw.astype(raw.dtype.newbyteorder("="))
        return raw

    @cached_property
    def _dtype(self) -> np.dtype:
        return np.dtype(self.type)

    @cached_property
    def _raw_row(self) -> Callable[[bytes], int]:
        """The raw number of one payload (a function made once per field: the per-message path is hot too)."""
        at, dt, mask, shift = self.at, self._dtype, self.mask, self.shift
        if dt.itemsize == 1 and dt.kind == "u":
            if mask is None and not shift:
                return lambda b: b[at]
            return lambda b: (b[at] & (0xFF if mask is None else mask)) >> shift
        order: Literal["little", "big"] = "little" if dt.str[0] == "<" else "big"
        end, signed = at + dt.itemsize, dt.kind == "i"
        frm = int.from_bytes
        if mask is None and not shift:
            return lambda b: frm(b[at:end], order, signed=signed)
        return lambda b: (frm(b[at:end], order, signed=signed) & (-1 if mask is None else mask)) >> shift

    @cached_property
    def row_reader(self) -> Callable[[bytes], Any]:
        raw, mul, add, div = self._raw_row, self.mul, self.add, self.div
        if mul == 1 and not add:
            return raw if div == 1 else lambda b: raw(b) / div
        return (lambda b: raw(b) * mul + add) if div == 1 else lambda b: (raw(b) * mul + add) / div

    def read_row(self, b: bytes) -> Any:
        return self.row_reader(b)

    def limits(self) -> tuple[int, int]:
        dt = np.dtype(self.type)
        if self.mask is not None:
            return 0, self.mask >> self.shift
        if dt.kind == "i":
            return -(1 << (_bits(dt) - 1)), (1 << (_bits(dt) - 1)) - 1
        return 0, (1 << _bits(dt)) - 1

    def to_raw(self, codec_id: str, values: np.ndarray) -> np.ndarray:
        lo, hi = self.limits()
        if self.mul == 1 and not self.add:
            return to_ints(codec_id, self.name, values, lo, hi, self.div)
        try:
            v = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise EncodeError(codec_id, self.name, "not a number") from None
        return to_ints(codec_id, self.name, (v * self.div - self.add) / self.mul, lo, hi)

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        dt = np.dtype(self.type)
        full = (1 << _bits(dt)) - 1
        mask = full if self.mask is None else self.mask
        _put_bits(frames, rows, self.at, dt, mask, self.to_raw(codec_id, values) << self.shift)


@dataclass(frozen=True)
class Flag(Num):
    """A bit (``mask``) of byte ``at`` as a bool; ``false=None`` gives JSON null for a clear bit."""

    mask: int | None = 1
    false: bool | None = False

    def _bit(self, view: View) -> np.ndarray:
        returned: np.ndarray = np.bitwise_and(view.byte(self.at), np.uint8(self.mask or 0))
        return returned

    def read(self, view: View) -> Any:
        return self._bit(view).astype(bool)

    def null(self, view: View) -> np.ndarray | None:
        return None if self.false is not None else self._bit(view) == 0

    def _value_part(self) -> Field:
        return replace(self, when=(), null_when=(), default=REQUIRED, encoded=True, false=False)  # (nulls: null())

    @cached_property
    def row_reader(self) -> Callable[[bytes], Any]:
        at, mask, false = self.at, self.mask or 0, self.false
        return lambda b: True if b[at] & mask else false

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        mask = self.mask or 0
        bits = np.where(np.equal(values, True), mask, 0)
        _put_bits(frames, rows, self.at, np.dtype("u1"), mask, bits)


@dataclass(frozen=True)
class Label(Num):
    """A text from ``table`` by the raw number; absent where the table has no entry. ``nonzero``: the raw
    number is 1 for any non-zero byte. ``encode()`` writes ``unnamed`` for None."""

    table: Mapping[int, str] = field(default_factory=dict)
    nonzero: bool = False
    unnamed: int = 0

    @cached_property
    def _tables(self) -> tuple[np.ndarray, np.ndarray]:
        """The texts by raw number (None where unnamed) and which raw numbers are named."""
        size = max([*self.table, 1 if self.nonzero else 0, (0xFF if self.mask is None else self.mask) >> self.shift])
        names = [self.table.get(i) for i in range(size + 1)]
        return lut(names, size + 1), np.array([name is not None for name in names])

    def _codes(self, view: View) -> np.ndarray:
        if self.nonzero:
            returned: np.ndarray = (view.byte(self.at) != 0).view(np.uint8)
            return returned
        if self.type == "u1" and not self.shift:
            raw = view.masked(self.at, 0xFF if self.mask is None else self.mask)  # shared with conditions
        else:
            raw = self._raw(view)
        return raw.copy() if not raw.flags.owndata else raw

    def present(self, view: View) -> np.ndarray | None:
        known = self._tables[1]
        if known.all():
            return None
        return one_of(self._codes(view), self.table, known)

    def read(self, view: View) -> Any:
        return Lookup(self._tables[0], self._codes(view))

    @cached_property
    def row_reader(self) -> Callable[[bytes], Any]:
        get, at = self.table.get, self.at
        if self.nonzero:
            return lambda b: get(int(b[at] != 0), ABSENT)
        raw = self._raw_row
        return lambda b: get(raw(b), ABSENT)

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=object)
        named = np.array([v is not None for v in values.tolist()], dtype=bool)
        codes = np.full(len(values), self.unnamed, dtype=np.int64)
        if named.any():
            reverse = {text: code for code, text in sorted(self.table.items(), reverse=True)}
            codes[named] = to_codes(codec_id, self.name, values[named].astype(str), reverse)
        super().write(codec_id, frames, rows, codes)


@dataclass(frozen=True)
class Table(Num):
    """A number from ``values`` by the raw number (None entries: JSON null). ``encode()`` takes the largest
    raw number whose value is at most the input (``values`` ascending)."""

    values: tuple[int | float | bool | None, ...] = ()
    kind: str = "int"

    @cached_property
    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        vals = np.array([0 if v is None else v for v in self.values], dtype=self.kind)
        nulls = np.array([v is None for v in self.values], dtype=bool)
        return vals, nulls

    @cached_property
    def _pieces(self) -> _Pieces | None:
        """The table as a few ramps and steps (see :class:`_Pieces`), or None: looked up."""
        values = self._arrays[0]
        if values.dtype.kind not in "iu" or self.limits()[1] >= len(values):
            return None
        return _Pieces.of(values.astype(np.int64).tolist())

    def _bits_of(self, view: View) -> np.ndarray:
        """The raw numbers, computed once per view for all the tables of the same bits."""
        key = (self.at, self.type, self.mask, self.shift)
        raw = view.indices.get(key)
        if raw is None:
            raw = view.indices[key] = self._raw(view)
        return raw

    def read(self, view: View) -> Any:
        values = self._arrays[0]
        if values.dtype == bool and np.count_nonzero(values) == 1:  # one true entry: a comparison
            # (a Python int: an int64 scalar would widen the whole byte column to int64 first)
            return self._bits_of(view) == int(np.flatnonzero(values)[0])
        pieces = self._pieces
        if pieces is not None:  # a few passes over the column instead of a gather from the table
            return pieces.apply(self._bits_of(view)).astype(values.dtype, copy=False)
        return values.take(self._bits_of(view))

    def null(self, view: View) -> np.ndarray | None:
        nulls = self._arrays[1]
        if not nulls.any():
            return None
        if np.count_nonzero(nulls) == 1:  # one null entry: a comparison
            returned: np.ndarray = self._bits_of(view) == int(np.flatnonzero(nulls)[0])
            return returned
        return nulls.take(self._bits_of(view))

    @cached_property
    def row_reader(self) -> Callable[[bytes], Any]:
        values, raw = self.values, self._raw_row
        return lambda b: values[raw(b)]

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        given = to_ints(codec_id, self.name, values, 0, 1 << 40)
        raw = np.searchsorted(np.array(self.values, dtype=np.int64), given, side="right") - 1
        dt = np.dtype(self.type)
        mask = (1 << _bits(dt)) - 1 if self.mask is None else self.mask
        _put_bits(frames, rows, self.at, dt, mask, raw.astype(np.int64) << self.shift)


_MAX_PIECES = 4  # ramps and steps of a table read arithmetically; a table needing more is looked up


@dataclass(frozen=True)
class _Pieces:
    """An integer table ``values[c]`` as ``start + slope * c + sum(d * max(c - k, 0) for k, d in ramps) +
    sum(j * (c >= k) for k, j in steps)``: a handful of passes over a column, where a gather from a table
    (``take``) costs several times more per row (the Nwave duration tables: three pieces)."""

    start: int
    slope: int
    ramps: tuple[tuple[int, int], ...]
    steps: tuple[tuple[int, int], ...]
    dtype: np.dtype

    @classmethod
    def of(cls, values: list[int]) -> _Pieces | None:
        """The pieces of ``values`` (None: more than :data:`_MAX_PIECES`, or too wide for 32 bits)."""
        if len(values) < 2:
            return None
        d = [b - a for a, b in zip(values, values[1:], strict=False)]
        slope, ramps, steps = d[0], [], []
        for j, dj in enumerate(d):
            if dj == slope:
                continue
            if j + 1 == len(d) or d[j + 1] == slope:  # a jump: the slope goes on after it
                steps.append((j + 1, dj - slope))
            else:  # a new slope from c = j on
                ramps.append((j, dj - slope))
                slope = dj
        if len(ramps) + len(steps) > _MAX_PIECES:
            return None
        top = len(values) - 1
        bound = abs(values[0]) + abs(d[0]) * top + sum(abs(x) * top for _, x in ramps) + sum(abs(x) for _, x in steps)
        dtype = np.dtype(np.int16 if bound < 1 << 15 else np.int32 if bound < 1 << 31 else np.int64)
        if dtype == np.int64:
            return None
        return cls(values[0], d[0], tuple(ramps), tuple(steps), dtype)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        c = raw.astype(self.dtype) if self.slope or self.ramps else raw
        if not self.slope:
            out = np.full(len(raw), self.start, dtype=self.dtype)
        else:
            out = c if self.slope == 1 else c * self.dtype.type(self.slope)
            if self.start:
                out = out + self.dtype.type(self.start)
            if out is c and (self.ramps or self.steps):
                out = c.copy()
        # (products with comparisons: numpy's maximum and where= are several times slower on small integers)
        for k, d in self.ramps:
            t = c - self.dtype.type(k)
            t *= raw >= k
            if d != 1:
                t *= self.dtype.type(d)
            out += t
        for k, j in self.steps:
            out += (raw >= k) * self.dtype.type(j)
        return out


@dataclass(frozen=True)
class Marker(Field):
    """``text`` where bit ``mask`` of byte ``at`` is set (absent otherwise); ``encode()`` sets the bit for any
    input but None, False, "" and NaN."""

    at: int = 0
    mask: int = 0x80
    text: str = ""

    @property
    def extent(self) -> int:
        return self.at + 1

    def present(self, view: View) -> np.ndarray | None:
        returned: np.ndarray = (view.byte(self.at) & np.uint8(self.mask)) != 0
        return returned

    def read(self, view: View) -> Any:
        return self.text

    def read_row(self, b: bytes) -> Any:
        return self.text if b[self.at] & self.mask else ABSENT

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        flags = np.array([v is not None and v is not False and v != "" and v == v for v in values.tolist()])
        frames[rows[flags], self.at] |= self.mask


@dataclass(frozen=True)
class Hex(Field):
    """The bytes at ``at`` (offsets) as lowercase hex, each byte followed by ``sep``."""

    at: tuple[int, ...] = ()
    sep: str = ""

    @property
    def extent(self) -> int:
        return max(self.at) + 1

    def read(self, view: View) -> Any:
        if view.data is not None and self.at == tuple(range(self.at[0], self.at[-1] + 1)):
            chosen = view.data[:, self.at[0] : self.at[-1] + 1]
        else:
            chosen = np.stack([view.byte(j) for j in self.at], axis=1)
        return Later(hex_column, chosen, False, self.sep)

    def read_row(self, b: bytes) -> Any:
        return "".join(f"{b[i]:02x}{self.sep}" for i in self.at)

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        uniq, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)
        table = np.zeros((len(uniq), len(self.at)), dtype=np.uint8)
        for i, text in enumerate(uniq.tolist()):
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
            if len(raw) != len(self.at) or text != text.lower():
                raise EncodeError(codec_id, self.name, f"not {len(self.at)} lowercase hex bytes: {text!r}")
            table[i] = np.frombuffer(raw, dtype=np.uint8)
        frames[np.ix_(rows, np.array(self.at))] = table[inverse.reshape(-1)]


def _dotted(k: int) -> str:
    return f"{k >> 16}.{k >> 8 & 255}.{k & 255}"


@dataclass(frozen=True)
class Version(Field):
    """Three bytes from ``at`` as a dotted version text (``"2.4.9"``)."""

    at: int = 0

    @property
    def extent(self) -> int:
        return self.at + 3

    def read(self, view: View) -> Any:
        a, b, c = (view.byte(self.at + j).astype(np.int64) for j in range(3))
        return Later(format_unique, (a << 16) | (b << 8) | c, _dotted)

    def read_row(self, b: bytes) -> Any:
        return f"{b[self.at]}.{b[self.at + 1]}.{b[self.at + 2]}"

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        frames[rows, self.at : self.at + 3] = dotted_bytes(codec_id, self.name, values)
