"""Output columns kept as the writes that make them and built when first read.

A text field such as the Bosch ``type`` or the Netvox ``Device`` is one Python object per row; gathering a
million of them from a lookup table costs more than decoding every numeric field of the batch, and the
ingest path never reads them (domain mappings use the numbers). A :class:`LazyColumn` records each write
(rows, values, row mask) and replays them into an object array on the first read of ``values``, e.g. in
:meth:`Decoded.objects`; its ``present`` and ``null`` masks are ordinary arrays. To every reader it is an
ordinary :class:`Column`. The same holds for a numeric field that only a few rows of a batch have: its
writes hold those rows' decoded values, and the dense array of n rows is built when first read.

A write's values may be deferred too: :class:`Lookup` (``table[codes]``, the codes being the decoded
numbers) and :class:`Later` (a function of decoded arrays, such as formatting version numbers). Arrays handed
to a write are kept, not copied: they must not be modified afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Column

__all__ = ["LazyColumn", "Later", "Lookup", "resolve"]

Rows = slice | np.ndarray


class Lookup:
    """``table[codes]``, built when needed (one fill when every code is the same)."""

    __slots__ = ("codes", "table")

    def __init__(self, table: np.ndarray, codes: np.ndarray) -> None:
        self.table = table
        self.codes = codes

    def resolve(self) -> np.ndarray:
        codes = self.codes
        if len(codes) and bool((codes == codes[0]).all()):
            out = np.empty(len(codes), dtype=self.table.dtype)
            out.fill(self.table[codes[0]])
            return out
        returned: np.ndarray = self.table[codes]
        return returned


class Later:
    """``fn(*args)``, built when needed."""

    __slots__ = ("args", "fn")

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn = fn
        self.args = args

    def resolve(self) -> Any:
        return self.fn(*self.args)


def resolve(values: Any) -> Any:
    """The values of a write: deferred ones built, others as they are."""
    return values.resolve() if isinstance(values, Lookup | Later) else values


def put(target: np.ndarray, rows: Rows, values: Any, where: np.ndarray | None) -> None:
    """``target[rows] = values`` where ``where`` (a mask over ``rows``) is True."""
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


class LazyColumn(Column):
    """A column of n rows (object values unless ``dtype`` says otherwise) whose ``values`` are built from its
    recorded writes when first read."""

    def __init__(self, n: int, present: np.ndarray, null: np.ndarray | None = None, dtype: Any = object) -> None:
        self._n = n
        self.dtype = np.dtype(dtype)
        self._writes: list[tuple[Rows, Any, np.ndarray | None]] = []
        self._values: np.ndarray | None = None
        self.present = present
        self.null = null

    def write(self, rows: Rows, values: Any, where: np.ndarray | None = None) -> None:
        """Record ``values`` (an array over ``rows``, one value, or a deferred :class:`Lookup`/:class:`Later`)
        for ``rows`` where ``where``; later writes win over earlier ones."""
        if self._values is not None:
            put(self._values, rows, resolve(values), where)
        else:
            self._writes.append((rows, values, where))

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            # None (objects) or zero (numbers) where no write reached
            out = np.empty(self._n, dtype=object) if self.dtype == object else np.zeros(self._n, dtype=self.dtype)
            for rows, values, where in self._writes:
                put(out, rows, resolve(values), where)
            self._values = out
            self._writes = []
        return self._values

    @values.setter
    def values(self, values: np.ndarray) -> None:
        self._values = values
        self._writes = []
