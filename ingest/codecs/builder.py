"""Building a :class:`Decoded` from a codec's array results: :class:`Builder`.

Numeric and boolean fields get ordinary arrays, written as the codec goes. Object-valued fields (texts,
lists, and numbers mixed with texts) are :class:`~ingest.codecs.lazy_columns.LazyColumn` s: their writes are
recorded and replayed when the values are first read, so that a batch pays for Python objects only when
someone asks for them. Presence and null masks are always ordinary arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Column, Decoded, FieldSpec
from .lazy_columns import Later, LazyColumn, Lookup, put

__all__ = ["Builder", "Rows"]

Rows = slice | np.ndarray

_DTYPES: dict[str, Any] = {"float": np.float64, "int": np.int64, "bool": np.bool_}
_OBJECT = np.dtype(object)


class Builder:
    """Collects the columns and errors of a batch of n rows; :meth:`build` returns the :class:`Decoded`.

    Every declared field gets a column (``float`` -> float64, ``int`` -> int64, ``bool`` -> bool, anything
    else -> object). ``set`` writes values for some rows and marks them present; ``where`` narrows the rows;
    ``null`` marks rows whose value is JSON ``null``. ``fail`` marks rows as errors with a reason. ``raw``
    holds codec-private arrays for ``domain()`` (they are not part of the official object).

    Arrays handed to ``set`` may be kept as they are (not copied): do not modify them afterwards.
    """

    def __init__(self, n: int, fields: Sequence[FieldSpec]) -> None:
        self.n = n
        self.ok = np.ones(n, dtype=bool)
        self._error: np.ndarray | None = None  # allocated at the first failure
        self.raw: dict[str, np.ndarray] = {}
        self._dtypes = {f.name: np.dtype(_DTYPES.get(f.kind, object)) for f in fields}
        self.columns: dict[str, Column] = {}

    def _whole(self, rows: Rows) -> bool:
        return isinstance(rows, slice) and rows.indices(self.n) == (0, self.n, 1)

    def set(
        self,
        name: str,
        rows: Rows,
        values: Any,
        where: np.ndarray | None = None,
        null: np.ndarray | None = None,
        dtype: Any = None,
    ) -> None:
        """Write ``values`` (an array over ``rows``, one value, or for an object field a deferred
        :class:`Lookup`/:class:`Later`) where ``where``; ``null`` marks JSON nulls. ``dtype`` overrides the
        field kind's array type (an ``object`` field whose values are all numbers in this batch can be
        float64); a numeric column that later gets object values becomes an object column."""
        if where is not None:
            if not where.any():
                return
            if where.all():
                where = None
        want = self._dtypes[name] if dtype is None else np.dtype(dtype)
        col = self.columns.get(name)
        lazy = isinstance(col, LazyColumn) or (want == _OBJECT or isinstance(values, Lookup | Later))
        if col is None:
            col = self._new(name, rows, values, where, null, want, lazy)
            if col is None:
                return
        elif lazy and not isinstance(col, LazyColumn):
            # numbers so far, now object values too: an object column that starts with those numbers
            numbers = col
            col = LazyColumn(self.n, numbers.present, numbers.null)
            col.write(slice(None), numbers.values)
            self.columns[name] = col
        if null is not None:
            if col.null is None:
                col.null = np.zeros(self.n, dtype=bool)
            put(col.null, rows, null, where)
        if isinstance(col, LazyColumn):
            col.write(rows, values, where)
        else:
            put(col.values, rows, values, where)
        put(col.present, rows, True, where)

    def _new(
        self, name: str, rows: Rows, values: Any, where: np.ndarray | None, null: Any, want: np.dtype, lazy: bool
    ) -> Column | None:
        """A new column for ``name``; None when this first write already made it complete."""
        if not (self.n and self._whole(rows)):
            col: Column
            if lazy:
                col = LazyColumn(self.n, np.zeros(self.n, dtype=bool))
            else:
                col = Column(np.empty(self.n, dtype=want), np.zeros(self.n, dtype=bool))
            self.columns[name] = col
            return col
        # The rows are the whole batch: adopt the values (and masks) instead of writing them.
        present = np.ones(self.n, dtype=bool) if where is None else where.copy()
        nulls = None if null is None else np.broadcast_to(null, (self.n,)) & present
        if lazy:
            col = LazyColumn(self.n, present, nulls)
            col.write(rows, values, where)
        elif isinstance(values, np.ndarray) and values.shape == (self.n,):
            fresh = values.flags.owndata and values.dtype == want
            # A freshly computed array is adopted as it is (callers pass each one to one column only).
            col = Column(values if fresh else values.astype(want), present, nulls)
        else:
            vals = np.empty(self.n, dtype=want)
            vals[:] = values
            col = Column(vals, present, nulls)
        self.columns[name] = col
        return None

    def set_raw(self, name: str, rows: Rows, values: Any, dtype: Any = np.float64) -> None:
        """Write codec-private values (zero where never written) into ``raw[name]``. An array over the whole
        batch is kept as it is."""
        arr = self.raw.get(name)
        if arr is None and self._whole(rows) and isinstance(values, np.ndarray) and values.shape == (self.n,):
            self.raw[name] = values
            return
        if arr is None:
            arr = self.raw[name] = np.zeros(self.n, dtype=dtype)
        arr[rows] = values

    def fail(self, rows: Rows, reason: str, where: np.ndarray | None = None) -> None:
        if where is not None and not where.any():
            return
        if self._error is None:
            self._error = np.empty(self.n, dtype=object)  # all None
        put(self.ok, rows, False, where)
        put(self._error, rows, reason, where)

    def build(self) -> Decoded:
        """The result. A field no row has gets a read-only placeholder column (nothing present)."""
        failed = not self.ok.all()
        nothing: Column | None = None
        columns: dict[str, Column] = {}
        for name, dtype in self._dtypes.items():
            col = self.columns.get(name)
            if col is None:
                if nothing is None or nothing.values.dtype != dtype:
                    absent = np.broadcast_to(np.zeros(1, dtype=bool), (self.n,))
                    nothing = Column(np.broadcast_to(np.zeros(1, dtype=dtype), (self.n,)), absent)
                col = Column(nothing.values, nothing.present)
            elif failed:
                col.present &= self.ok
            columns[name] = col
        error = self._error if self._error is not None else np.broadcast_to(np.array([None]), (self.n,))
        return Decoded(self.n, self.ok, error, columns, self.raw)
