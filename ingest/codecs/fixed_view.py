"""The bytes of a fixed-layout batch and the conditions on them: :class:`View` and :class:`Is`/:class:`Length`.

A :class:`View` holds some rows of a batch (all of them, or the rows of a rare frame type) either as a 2-D
``uint8`` array or, for a whole batch of payloads of several lengths, read column by column straight from the
flat buffer; it computes each byte column, masked byte and condition once. Conditions test a payload's byte
(``(b[at] & mask) in values``) or its length, over a view (``View.test``) or one payload (:func:`holds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .arrays import Rows, row_count, subset
from .row_classes import at_least, heads, one_of

__all__ = ["Cond", "Is", "Length", "View", "holds", "is_", "not_"]


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
        self.indices: dict[tuple[int, str, int | None, int], np.ndarray] = {}  # raw numbers of tables, see Table

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

    def take_rows(self, idx: np.ndarray, width: int, starts: np.ndarray | None = None) -> View:
        """Batch rows ``idx`` (each at least ``width`` bytes long) with their first ``width`` bytes; ``starts``:
        where their payloads start, when known."""
        assert self.buf is not None and isinstance(self.rows, slice)
        return View(idx, self.offsets, data=heads(self.buf, self.offsets[idx] if starts is None else starts, width))

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


def holds(cond: Cond, b: bytes) -> bool:
    return len(b) >= cond.at_least if isinstance(cond, Length) else cond.test_row(b)
