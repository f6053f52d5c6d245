"""Fixed-layout frames described once: the batch decoder, the per-message decoder and the encoder of the
Netvox, Nwave, Bosch and Dragino codecs all derive from one :class:`Layout`.

A fixed-layout frame is chosen by its fPort (and within an fPort by conditions on its bytes), and every
field sits at a fixed place. A layout is data:

* :class:`Port` per fPort: the length rule (at least ``need`` bytes, or exactly), the frame's ``type`` text,
  whether the payload itself is the output (``raw``), rows that fail on a byte condition (``fail``) and the
  encoder's frame size;
* :class:`Group` s of fields with the fPorts and byte conditions (:func:`is_`, :func:`not_`,
  :class:`Length`) under which a frame has them;
* fields (:class:`Num`, :class:`Flag`, :class:`Label`, :class:`Table`, :class:`Marker`, :class:`Hex`,
  :class:`Version`; a codec may add its own kind with the same three methods): where the value sits (byte
  offset, number type, mask, shift), how raw bits become the value (``(raw * mul + add) / div``, a table)
  and the conditions under which the frame has it. Each kind reads a batch (``read``), one payload
  (``read_row``) and writes frames (``write``).

Decoding a batch (:meth:`Layout.decode`):

1. fPorts become small codes in one lookup (:class:`~ingest.codecs.row_classes.PortCodes`); rows of other
   fPorts fail (or decode to ``{}``), rows too short (or of the wrong length) fail with the length reason.
2. *Common* groups (the bulk of the traffic) are read over the whole batch, straight from the buffer (or
   from the ``(n, width)`` frames when every frame has one width), with a ``where`` mask per condition:
   no gather, no scatter.
3. *Sparse* groups (rare frame types) are cut out of the batch and read on their own rows.

Encoding (:meth:`Layout.encode`) writes the fields in the order of their group, each where its conditions
hold on the bytes written so far: selector fields (a command byte, a mode) come first; the codec may write
selector bytes that no field holds beforehand (``prepare``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from .base import Decoded, EncodeError, FieldSpec
from .batch import Rows, format_unique, hex_column, lut, pack, row_count, subset, wrong_length
from .builder import Builder
from .encoding import batch_size, be_bytes, dotted_bytes, field_values, le_bytes, pack_lists, to_codes, to_ints
from .lazy_columns import Later, Lookup
from .row_classes import PortCodes, at_least, fail_by_length, frames, heads, length_masks, one_of, payload_lists

__all__ = [
    "OPTIONAL",
    "Cond",
    "REQUIRED",
    "Field",
    "Flag",
    "Group",
    "Hex",
    "Is",
    "Label",
    "Layout",
    "Length",
    "Marker",
    "Num",
    "Port",
    "Table",
    "Version",
    "View",
    "is_",
    "not_",
]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: ``default`` of a field that ``encode()`` input must give (wherever its conditions hold).
REQUIRED: Any = _Sentinel("REQUIRED")
#: ``default`` of a field that ``encode()`` input may leave out: its bits stay as they are.
OPTIONAL: Any = _Sentinel("OPTIONAL")


# --- conditions ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Is:
    """``(byte[at] & mask)`` is one of ``values`` (``negate``: none of them)."""

    at: int
    values: tuple[int, ...]
    mask: int = 0xFF
    negate: bool = False

    def test(self, masked: np.ndarray) -> np.ndarray:
        """On the byte column already masked."""
        lo, hi = min(self.values), max(self.values)
        if len(self.values) > 1 and hi - lo + 1 == len(set(self.values)):  # a run of values: one or two passes
            if hi == self.mask or hi == 0xFF:
                hit = masked >= np.uint8(lo)
            else:
                hit = (masked - np.uint8(lo)) <= np.uint8(hi - lo)
        else:
            hit = one_of(masked, self.values, self._lut)
        return ~hit if self.negate else hit

    def test_row(self, b: bytes) -> bool:
        return ((b[self.at] & self.mask) in self.values) != self.negate

    @cached_property
    def _lut(self) -> np.ndarray:
        table = np.zeros(256, dtype=bool)
        table[list(self.values)] = True
        return table


def is_(at: int, *values: int, mask: int = 0xFF) -> Is:
    return Is(at, values, mask)


def not_(at: int, *values: int, mask: int = 0xFF) -> Is:
    return Is(at, values, mask, negate=True)


@dataclass(frozen=True)
class Length:
    """The payload has at least ``at_least`` bytes."""

    at_least: int


Cond = Is | Length


# --- views: the bytes of some rows ----------------------------------------------------------------------


class View:
    """The bytes of some rows of a batch: ``rows`` (``slice(None)`` for all) as a 2-D ``data`` array, or
    (the whole batch, payloads of several lengths) read column by column straight from the buffer."""

    def __init__(
        self, rows: Rows, offsets: np.ndarray, data: np.ndarray | None = None, buf: np.ndarray | None = None
    ) -> None:
        self.rows = rows
        self.offsets = offsets  # the whole batch's
        self.data = data
        self.buf = buf
        self._bytes: dict[int, np.ndarray] = {}
        self._long: dict[int, np.ndarray] = {}
        self._masked: dict[int, np.ndarray] = {}
        self._tests: dict[tuple[int, tuple[int, ...], int], np.ndarray] = {}
        self.values: dict[int, Any] = {}  # see Num.read
        self.indices: dict[tuple[int, str, int | None, int], tuple[np.ndarray, np.ndarray]] = {}  # see Table

    def byte(self, j: int) -> np.ndarray:
        if self.data is not None:
            return self.data[:, j]
        col = self._bytes.get(j)
        if col is None:
            assert self.buf is not None
            n = row_count(self.offsets)
            col = np.take(self.buf[j:], self.offsets[:-1], mode="clip") if len(self.buf) > j else np.zeros(n, np.uint8)
            self._bytes[j] = col
        return col

    def number(self, at: int, dtype: np.dtype) -> np.ndarray:
        """Bytes ``at ..`` read as one number of ``dtype`` (native byte order; may be a view)."""
        if self.data is not None and (self.data.strides[1:] == (1,) or dtype.itemsize == 1):
            return self.data[:, at : at + dtype.itemsize].view(dtype)[:, 0]
        width = dtype.itemsize
        if width == 1:
            return self.byte(at).view(dtype)
        value = np.zeros(len(self.byte(at)), dtype=f"u{width}")
        for j in range(width):
            shift = 8 * (width - 1 - j) if dtype.str[0] == ">" else 8 * j
            value |= self.byte(at + j).astype(value.dtype) << shift
        return value.view(dtype.newbyteorder("="))

    def at_least(self, k: int) -> np.ndarray:
        mask = self._long.get(k)
        if mask is None:
            if isinstance(self.rows, slice):
                mask = at_least(self.offsets, k)
            else:
                mask = self.offsets[self.rows + 1] - self.offsets[self.rows] >= k
            self._long[k] = mask
        return mask

    def test(self, conds: Sequence[Cond]) -> np.ndarray | None:
        """Rows where all ``conds`` hold (None: no condition)."""
        mask: np.ndarray | None = None
        for c in conds:
            m = self.at_least(c.at_least) if isinstance(c, Length) else self._is(c)
            mask = m if mask is None else mask & m
        return mask

    def take(self, mask: np.ndarray, width: int) -> View:
        """The rows where ``mask`` holds, their first ``width`` bytes as a 2-D array (rows shorter than that
        have failed: they are left out)."""
        if self.data is not None:
            rows, data = subset(self.rows, self.data, mask)
            return View(rows, self.offsets, data=data)
        idx = np.flatnonzero(mask)
        return self.take_rows(idx[self.offsets[idx + 1] - self.offsets[idx] >= width], width)

    def take_rows(self, idx: np.ndarray, width: int) -> View:
        """Batch rows ``idx`` (each at least ``width`` bytes long) with their first ``width`` bytes."""
        assert self.buf is not None and isinstance(self.rows, slice)
        return View(idx, self.offsets, data=heads(self.buf, self.offsets[idx], width))

    def _is(self, c: Is) -> np.ndarray:
        """``c`` on every row, computed once per view (a negated condition from its positive)."""
        key = (c.at, c.values, c.mask)
        hit = self._tests.get(key)
        if hit is None:
            hit = self._tests[key] = Is(c.at, c.values, c.mask).test(self.masked(c.at, c.mask))
        return ~hit if c.negate else hit

    def masked(self, at: int, mask: int) -> np.ndarray:
        """``byte(at) & mask``, computed once."""
        if mask == 0xFF:
            return self.byte(at)
        key = at << 8 | mask
        col = self._masked.get(key)
        if col is None:
            col = self._masked[key] = self.byte(at) & np.uint8(mask)
        return col


# --- fields ---------------------------------------------------------------------------------------------


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
        null = self.null(view)
        if self.null_when:
            nulls = view.test(self.null_when)
            null = nulls if null is None else null | nulls
        out.set(self.name, view.rows, self.read(view), where=where, null=null)


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
        return np.bitwise_and(view.byte(self.at), np.uint8(self.mask or 0))

    def read(self, view: View) -> Any:
        return self._bit(view).astype(bool)

    def null(self, view: View) -> np.ndarray | None:
        return None if self.false is not None else self._bit(view) == 0

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
            return (view.byte(self.at) != 0).view(np.uint8)
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

    def _bits_of(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        """The raw numbers and the same as indices, computed once per view for all the tables of the same
        bits."""
        key = (self.at, self.type, self.mask, self.shift)
        both = view.indices.get(key)
        if both is None:
            raw = self._raw(view)
            both = view.indices[key] = (raw, raw.astype(np.intp))
        return both

    def read(self, view: View) -> Any:
        values = self._arrays[0]
        if values.dtype == bool and np.count_nonzero(values) == 1:  # one true entry: a comparison
            return self._bits_of(view)[0] == np.flatnonzero(values)[0]
        return values.take(self._bits_of(view)[1])

    def null(self, view: View) -> np.ndarray | None:
        nulls = self._arrays[1]
        if not nulls.any():
            return None
        if np.count_nonzero(nulls) == 1:  # one null entry: a comparison
            return self._bits_of(view)[0] == np.flatnonzero(nulls)[0]
        return nulls.take(self._bits_of(view)[1])

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
        return (view.byte(self.at) & np.uint8(self.mask)) != 0

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


# --- the layout -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    """An fPort's frames: at least ``need`` bytes (``exact``: exactly), their ``type`` text, ``raw``: the
    payload is the output (a list of byte values), ``fail``: (condition, reason) of rows that decode to an
    error, ``size``: the bytes ``encode()`` writes (default ``need``)."""

    port: int
    need: int = 0
    exact: bool = False
    type: str | None = None
    raw: bool = False
    fail: tuple[tuple[Cond, str], ...] = ()
    size: int | None = None


@dataclass(frozen=True)
class Group:
    """Fields that the frames of ``ports`` have where ``when`` holds. ``sparse``: a rare frame type, read
    on its own rows rather than over the whole batch."""

    ports: tuple[int, ...]
    fields: tuple[Field, ...]
    when: tuple[Cond, ...] = ()
    sparse: bool = False

    @property
    def extent(self) -> int:
        return max([f.extent for f in self.fields] + [c.at + 1 for c in self.when if isinstance(c, Is)])


@dataclass
class Layout:
    """A codec's fixed-layout frames. ``unknown_port``: the error text of any other fPort (None: such rows
    decode to ``{}``); ``width``: every frame is read through its first ``width`` bytes (the length rules
    are then the same for every fPort); ``type_key``/``raw_key``: the output keys of a frame's type text
    and raw payload."""

    ports: tuple[Port, ...]
    groups: tuple[Group, ...]
    unknown_port: str | None = None
    width: int | None = None
    type_key: str = "type"
    raw_key: str = "bytes"
    _by_port: dict[int, Port] = field(init=False)

    def __post_init__(self) -> None:
        common = {p for g in self.groups if not g.sparse for p in g.ports}
        sparse = {p for g in self.groups if g.sparse for p in g.ports} | {p.port for p in self.ports if p.raw}
        # fPort codes: those whose frames are only read over the whole batch first, so the fPorts with rare
        # frame types (whose rows are gathered) are the codes above them
        ordered = sorted(self.ports, key=lambda p: p.port in sparse)
        self._by_port = {p.port: p for p in ordered}
        self._codes = PortCodes(self._by_port)
        self._code_of = {p.port: i + 1 for i, p in enumerate(ordered)}
        self._n_plain = sum(p.port not in sparse for p in ordered)
        self._need = np.array([0, *(p.need for p in ordered)])
        # fPorts with rare frame types have their rows' lengths checked one by one (see _view)
        self._common_needs = sorted({p.need for p in ordered if p.need > 0 and p.port in common - sparse})
        tested = [c for g in self.groups if not g.sparse for f in g.fields for c in f.when if isinstance(c, Length)]
        self._lengths = sorted(set(self._common_needs) | {c.at_least for c in tested})
        types = [p.type for p in ordered]
        self._types = lut([None, *types], len(types) + 1) if any(types) else None
        self._plans: dict[tuple[int, int], tuple[list[_Step], list[int], bool]] = {}
        self._chosen: dict[tuple[int, ...], list[tuple[str, Callable[[bytes], Any] | None, bool]]] = {}

    def port(self, f_port: int) -> Port | None:
        return self._by_port.get(f_port)

    def _reason(self, port: int, length: int) -> str:
        p = self._by_port[port]
        if self.width:
            return wrong_length(length, str(self.width))
        return wrong_length(length, str(p.need) if p.exact else f"at least {p.need}")

    def _codes_of(self, ports: Sequence[int]) -> tuple[int, ...]:
        return tuple(sorted(self._code_of[p] for p in ports))

    # --- batch decoding -----------------------------------------------------------------------------------

    def decode(self, fields: Sequence[FieldSpec], f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = np.asarray(buf, dtype=np.uint8)
        port = np.asarray(f_port, dtype=np.int64)
        n = row_count(offsets)
        out = Builder(n, fields)
        code = self._codes(port)
        if self.unknown_port is not None:
            out.fail(slice(None), self.unknown_port, where=code == 0)
        if self._types is not None:
            out.set(self.type_key, slice(None), Lookup(self._types, code), where=code != 0)
        view, code, rare_rows = self._view(out, port, code, buf, offsets)
        rare, rare_code = rare_rows if rare_rows is not None else (None, None)
        if view is None:
            return out.build()
        masks: dict[tuple[int, ...], np.ndarray | None] = {}
        for group in self.groups:
            if not group.sparse:
                self._decode_group(out, view, group, self._port_mask(masks, code, group.ports))
        pool = self._pool(view) if rare is None else None
        for group in self.groups:
            if group.sparse:
                sub = self._sparse_rows(pool or view, group, code, rare, rare_code, masks)
                if sub is not None:
                    for f in group.fields:
                        f.put(out, sub, sub.test(f.when))
        for p in self.ports:
            k = self._code_of[p.port]
            for cond, reason in p.fail:
                hit = view.test((cond,))
                where = code == k
                out.fail(view.rows, reason, where=where if hit is None else where & hit)
            if p.raw:
                rows = np.flatnonzero(code == k) if rare is None else rare[rare_code == k]
                if len(rows):
                    out.set(self.raw_key, rows, payload_lists(buf, offsets, rows))
        return out.build()

    def _pool(self, view: View) -> View | None:
        """Frames of one width whose sparse groups all select on the same bits (one fPort, a mode byte): the
        rows of any of them, cut out together (None: each group cuts its own rows)."""
        sparse = [g for g in self.groups if g.sparse]
        if not sparse or len(self.ports) != 1 or self.unknown_port is None:
            return None
        conds = [g.when[0] if len(g.when) == 1 else None for g in sparse]
        first = conds[0]
        if not isinstance(first, Is) or any(
            not isinstance(c, Is) or c.negate or (c.at, c.mask) != (first.at, first.mask) for c in conds
        ):
            return None
        values = [v for c in conds if isinstance(c, Is) for v in c.values]
        # the rows of any group, and maybe a few more: each group selects its own among them
        any_of = view.test((Is(first.at, tuple(range(min(values), max(values) + 1)), first.mask),))
        assert any_of is not None
        return view.take(any_of, max(g.extent for g in sparse))

    def _sparse_rows(
        self,
        view: View,
        group: Group,
        code: np.ndarray,
        rare: np.ndarray | None,
        rare_code: np.ndarray | None,
        masks: dict[tuple[int, ...], np.ndarray | None],
    ) -> View | None:
        """The rows of a sparse group, gathered (None: no row)."""
        codes = self._codes_of(group.ports)
        if rare is not None and rare_code is not None:  # pick from the rows of the fPorts with rare frame types
            idx = rare[_code_mask(rare_code, codes)]
            if not len(idx):
                return None
            sub = view.take_rows(idx, group.extent)
            cond = sub.test(group.when)
            if cond is None:
                return sub
            return sub.take(cond, group.extent) if cond.any() else None
        mask = _both(self._port_mask(masks, code, group.ports), view.test(group.when))
        if mask is None:
            mask = np.ones(len(code), dtype=bool)
        return view.take(mask, group.extent) if mask.any() else None

    def _view(
        self, out: Builder, port: np.ndarray, code: np.ndarray, buf: np.ndarray, offsets: np.ndarray
    ) -> tuple[View | None, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The view of the frames, the fPort codes of its rows and (payloads of several widths) the rows of
        fPorts with rare frame types long enough for them, with their codes. Rows too short (or of the wrong
        length) fail here; build() clears their columns."""
        if self.width is not None:
            exact = self.ports[0].exact
            rows, d = frames(buf, offsets, self.width, exact=exact)
            if isinstance(rows, np.ndarray):  # some rows have another length
                lens = np.diff(offsets)
                wrong = (code != 0) & (lens != self.width if exact else lens < self.width)
                fail_by_length(out, np.flatnonzero(wrong), port, offsets, self._reason)
                code = code[rows]
            return (View(rows, offsets, data=d) if len(d) else None), code, None
        # fPorts of common groups: length masks over the whole batch, in one chunked pass (with the lengths
        # that the common groups' fields test); fPorts with rare frame types: the lengths of their rows
        view = View(slice(None), offsets, buf=buf)
        if self._lengths == [1]:  # not empty: one comparison
            view._long[1] = offsets[1:] != offsets[:-1]
        else:
            for k, mask in zip(self._lengths, length_masks(offsets, self._lengths), strict=True):
                view._long[k] = mask
        for need in self._common_needs:
            codes = self._codes_of(
                [p.port for p in self.ports if p.need == need and self._code_of[p.port] <= self._n_plain]
            )
            short = _code_mask(code, codes) & ~view._long[need]
            if short.any():
                fail_by_length(out, np.flatnonzero(short), port, offsets, self._reason)
        rare = np.flatnonzero(code > self._n_plain)
        rare_code = code[rare]
        if len(rare):  # (short rows of common fPorts fail again here, for the same reason)
            short = offsets[1:][rare] - offsets[:-1][rare] < self._need[rare_code]
            if short.any():
                fail_by_length(out, rare[short], port, offsets, self._reason)
                rare, rare_code = rare[~short], rare_code[~short]
        return view, code, (rare, rare_code)

    def _port_mask(
        self, masks: dict[tuple[int, ...], np.ndarray | None], code: np.ndarray, ports: tuple[int, ...]
    ) -> np.ndarray | None:
        """Rows of ``ports``; None (no mask) when those are all the fPorts and rows of others have failed."""
        if ports not in masks:
            every = self.unknown_port is not None and set(ports) == set(self._by_port)
            masks[ports] = None if every else _code_mask(code, self._codes_of(ports))
        return masks[ports]

    @staticmethod
    def _decode_group(out: Builder, view: View, group: Group, mask: np.ndarray | None) -> None:
        if mask is not None and not mask.any():
            return
        mask = _both(mask, view.test(group.when))
        shared: dict[tuple[Cond, ...], np.ndarray | None] = {}
        for f in group.fields:
            if f.when not in shared:
                shared[f.when] = _both(mask, view.test(f.when))
            f.put(out, view, shared[f.when])

    # --- per-message decoding -----------------------------------------------------------------------------

    def decode_row(self, fields: Sequence[FieldSpec], f_port: int, b: bytes) -> dict[str, Any]:
        p = self._by_port.get(f_port)
        if p is None:
            return {} if self.unknown_port is None else {"errors": [self.unknown_port]}
        need = self.width or p.need
        if len(b) < need or (p.exact and len(b) != need):
            return {"errors": [self._reason(f_port, len(b))]}
        for cond, reason in p.fail:
            if _holds(cond, b):
                return {"errors": [reason]}
        plan = self._plans.get((id(fields), f_port))
        if plan is None:
            plan = self._plans[(id(fields), f_port)] = self._plan(fields, p)
        steps, positions, by_length = plan
        # What a frame has depends only on the bytes its conditions read (and, with length conditions, its
        # length): the steps that apply are worked out once per distinct such bytes.
        size = len(b) if by_length else min(len(b), positions[-1] + 1 if positions else 0)
        key = (id(steps), size, *[b[i] for i in positions if i < size])
        chosen = self._chosen.get(key)
        if chosen is None:
            chosen = [
                (name, f, null is not None and null(b)) for name, f, holds, null in steps if holds is None or holds(b)
            ]
            if len(self._chosen) < _CHOSEN_MAX:
                self._chosen[key] = chosen
        obj: dict[str, Any] = {}
        for name, f, null in chosen:
            if f is None:
                obj[name] = p.type if name == self.type_key else list(b)
            else:
                value = f(b)
                if value is not ABSENT:
                    obj[name] = None if null else value
        return obj

    def _plan(self, fields: Sequence[FieldSpec], p: Port) -> tuple[list[_Step], list[int], bool]:
        """What the frames of fPort ``p`` may hold, in the order of the codec's fields, the bytes their
        conditions read and whether a condition tests the length."""
        steps: list[_Step] = []
        if p.type is not None:
            steps.append((self.type_key, None, None, None))
        if p.raw:
            steps.append((self.raw_key, None, None, None))
        for g in self.groups:
            if p.port in g.ports:
                steps += [(f.name, f.row_reader, _check((*g.when, *f.when)), _check(f.null_when)) for f in g.fields]
        rank = {spec.name: i for i, spec in enumerate(fields)}
        conds = [
            c
            for g in self.groups
            if p.port in g.ports
            for c in (*g.when, *(c for f in g.fields for c in (*f.when, *f.null_when)))
        ]
        positions = sorted({c.at for c in conds if isinstance(c, Is)})
        by_length = any(isinstance(c, Length) for c in conds)
        return sorted(steps, key=lambda step: rank[step[0]]), positions, by_length

    # --- encoding -----------------------------------------------------------------------------------------

    def encode(
        self,
        codec_id: str,
        f_port: int,
        columns: Mapping[str, Any],
        prepare: Callable[[np.ndarray, Mapping[str, Any], int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``prepare(frames, columns, n)`` writes selector bytes that no field holds."""
        p = self._by_port.get(f_port)
        if p is None:
            raise EncodeError(codec_id, "f_port", f"unknown FPort {f_port}")
        n = batch_size(columns)
        if p.raw:
            return pack_lists(codec_id, self.raw_key, field_values(codec_id, columns, self.raw_key, n))
        groups = [g for g in self.groups if f_port in g.ports]
        size = self.width or p.size or p.need
        for g in groups:
            for f in g.fields:
                if f.encoded and any(isinstance(c, Length) for c in f.when) and f.name in columns:
                    size = max(size, f.extent)
        frames = np.zeros((n, size), dtype=np.uint8)
        if prepare is not None:
            prepare(frames, columns, n)
        for g in groups:
            for f in g.fields:
                if f.encoded and (f.name in columns or not any(isinstance(c, Length) for c in f.when)):
                    self._encode_field(codec_id, frames, columns, n, f, (*g.when, *f.when))
        return pack([(np.arange(n), frames)], n)

    @staticmethod
    def _encode_field(
        codec_id: str, frames: np.ndarray, columns: Mapping[str, Any], n: int, f: Field, when: tuple[Cond, ...]
    ) -> None:
        rows = np.ones(n, dtype=bool)
        for c in (*when, *f.null_when):
            if isinstance(c, Is):
                hit = c.test(frames[:, c.at] & np.uint8(c.mask))
                rows &= ~hit if c in f.null_when else hit
        if not rows.any():
            return
        if f.name in columns:
            values = field_values(codec_id, columns, f.name, n)[rows]
        elif f.default is OPTIONAL:
            return
        elif f.default is REQUIRED:
            raise EncodeError(codec_id, f.name, "missing")
        else:
            values = np.full(int(rows.sum()), f.default)
        idx = np.flatnonzero(rows)
        if not isinstance(f, Label | Marker):  # None: the row has no such value
            given = np.array([v is not None for v in np.asarray(values, dtype=object).tolist()], dtype=bool)
            if not given.all():
                idx, values = idx[given], values[given]
        if len(idx):
            f.write(codec_id, frames, idx, values)


_CHOSEN_MAX = 1 << 16  # distinct condition bytes remembered by the per-message decoder
_Check = Callable[[bytes], bool]
_Step = tuple[str, Callable[[bytes], Any] | None, _Check | None, _Check | None]


def _check(conds: tuple[Cond, ...]) -> _Check | None:
    """One payload's test of all ``conds`` (None: no condition)."""
    if not conds:
        return None
    if len(conds) == 1 and isinstance(conds[0], Is):
        c = conds[0]
        at, mask, values, negate = c.at, c.mask, frozenset(c.values), c.negate
        return lambda b: ((b[at] & mask) in values) != negate
    return lambda b: all(_holds(c, b) for c in conds)


def _code_mask(code: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
    """``code`` is one of ``codes`` (ascending): one comparison for one code or a run of codes."""
    lo, k = codes[0], len(codes)
    if k == 1:
        return code == lo
    if codes == tuple(range(lo, lo + k)):
        return (code - np.uint8(lo)) < np.uint8(k)
    return one_of(code, codes, np.isin(np.arange(256), codes))


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b


def _holds(cond: Cond, b: bytes) -> bool:
    return len(b) >= cond.at_least if isinstance(cond, Length) else cond.test_row(b)
