"""Building a :class:`Decoded` from a codec's array results: :class:`Builder`.

A column whose first write covers the whole batch adopts that write's array (numbers and booleans). Other
columns are :class:`~ingest.codecs.lazy_columns.LazyColumn` s: object-valued fields (texts, lists) because
their Python objects cost more than the decoding and the ingest path never reads them, and fields that only
some rows of the batch have (rare frame types) because a dense array of n rows costs more than the rows'
values. Their writes (the decoded values of those rows) are recorded and replayed into the dense array when
``values`` is first read. Presence and null masks are always ordinary dense arrays.
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
    else -> object). An ``int`` column adopted from an integer array over the whole batch keeps that array's
    type (a byte stays uint8: the values are exact, the memory an eighth); later writes widen it as needed.

    ``set`` writes values for some rows and marks them present; ``where`` narrows the rows; ``null`` marks
    rows whose value is JSON ``null``. ``fail`` marks rows as errors with a reason. ``raw`` holds
    codec-private arrays for ``domain()`` (they are not part of the official object).

    Arrays handed to ``set`` may be kept as they are (not copied): do not modify them afterwards. Columns
    may share their ``present`` and ``null`` arrays.
    """

    def __init__(self, n: int, fields: Sequence[FieldSpec]) -> None:
        self.n = n
        self.ok = np.ones(n, dtype=bool)
        self._error: np.ndarray | None = None  # allocated at the first failure
        self.raw: dict[str, np.ndarray] = {}
        self._dtypes = {f.name: np.dtype(_DTYPES.get(f.kind, object)) for f in fields}
        self.columns: dict[str, Column] = {}
        # Presence masks adopted from ``where`` arguments (or one all-True mask) may be shared by several
        # columns; such a mask is copied before its column changes it.
        self._shared: set[str] = set()
        self._everywhere: np.ndarray | None = None
        self._rows: np.ndarray | None = None  # the rows of the last new column written for some rows only
        self._rows_present = np.zeros(0, dtype=bool)
        self._last_marked: dict[bool, tuple[Any, ...]] = {}  # see _marked

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
        as_object = want == _OBJECT or isinstance(values, Lookup | Later)
        col = self.columns.get(name)
        if col is None:
            if self.n and self._whole(rows):
                self._adopt(name, values, where, null, _OBJECT if as_object else want)
                return
            # Some rows only: the writes are recorded and the dense array is built when first read.
            kind = _OBJECT if as_object else want
            present = self._rows_mask(rows) if where is None else None
            if present is not None:
                col = LazyColumn(self.n, present, dtype=kind)
                col.write(rows, values)
                if null is not None:
                    col.null = np.zeros(self.n, dtype=bool)
                    put(col.null, rows, null, None)
                self.columns[name] = col
                self._shared.add(name)
                return
            col = LazyColumn(self.n, np.zeros(self.n, dtype=bool), dtype=kind)
            self.columns[name] = col
        elif isinstance(col, LazyColumn):
            if as_object:
                col.dtype = _OBJECT
        elif as_object:
            # numbers so far, now object values too: an object column that starts with those numbers
            numbers = col
            col = LazyColumn(self.n, numbers.present, numbers.null, dtype=_OBJECT)
            col.write(slice(None), numbers.values)
            self.columns[name] = col
        shared = name in self._shared  # its masks may be shared: changed ones are new arrays
        if null is not None:
            if col.null is None or shared:
                col.null = self._marked(col.null, rows, null, where)
            else:
                put(col.null, rows, null, where)
        if isinstance(col, LazyColumn):
            col.write(rows, values, where)
        else:
            _widen_for(col, values)
            put(col.values, rows, values, where)
        if shared:
            col.present = self._marked(col.present, rows, True, where)
        else:
            put(col.present, rows, True, where)

    def _marked(self, mask: np.ndarray | None, rows: Rows, value: Any, where: np.ndarray | None) -> np.ndarray:
        """A new mask: ``mask`` (None: all False) with ``value`` written at ``rows`` where ``where``. The columns
        of one frame type get the same writes, one after the other: the same inputs give the same (shared)
        mask, made once."""
        slot = value is True  # presence and null masks are remembered apart: a column's write changes both
        last = self._last_marked.get(slot)
        if last is not None and all(a is b for a, b in zip(last[:4], (mask, rows, value, where), strict=True)):
            returned: np.ndarray = last[4]
            return returned
        out = np.zeros(self.n, dtype=bool) if mask is None else mask.copy()
        put(out, rows, value, where)
        self._last_marked[slot] = (mask, rows, value, where, out)
        return out

    def _rows_mask(self, rows: Rows) -> np.ndarray | None:
        """The presence mask of exactly ``rows`` (an index array): consecutive new columns of the same rows
        (the fields of one frame type) share one mask."""
        if not isinstance(rows, np.ndarray):
            return None
        if rows is not self._rows:
            present = np.zeros(self.n, dtype=bool)
            present[rows] = True
            self._rows, self._rows_present = rows, present
        return self._rows_present

    def _adopt(self, name: str, values: Any, where: np.ndarray | None, null: Any, want: np.dtype) -> None:
        """The first write of a column is over the whole batch: adopt the values and masks."""
        if where is None:
            if self._everywhere is None:
                self._everywhere = np.ones(self.n, dtype=bool)
            present = self._everywhere
        else:
            present = where
        self._shared.add(name)
        nulls = None if null is None else _full_length(null, self.n)
        col: Column
        if want == _OBJECT:
            col = LazyColumn(self.n, present, nulls)
            col.write(slice(None), values, where)
        elif isinstance(values, np.ndarray) and values.shape == (self.n,):
            if want.kind == "i" and values.dtype.kind in "iu":
                want = values.dtype.newbyteorder("=")  # an integer field keeps the codec's integer type
            fresh = values.flags.owndata and values.dtype == want
            # A freshly computed array is adopted as it is (callers pass each one to one column only).
            col = Column(values if fresh else values.astype(want), present, nulls)
        else:
            vals = np.empty(self.n, dtype=want)
            vals[:] = values
            col = Column(vals, present, nulls)
        self.columns[name] = col

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
        absent: np.ndarray | None = None
        placeholders: dict[np.dtype, np.ndarray] = {}
        columns: dict[str, Column] = {}
        for name, dtype in self._dtypes.items():
            col = self.columns.get(name)
            if col is None:
                if absent is None:
                    absent = _read_only_zeros(self.n, np.dtype(bool))
                if dtype not in placeholders:
                    placeholders[dtype] = _read_only_zeros(self.n, dtype)
                col = Column(placeholders[dtype], absent)
            elif failed:
                if name in self._shared:
                    col.present = col.present & self.ok
                else:
                    col.present &= self.ok
            columns[name] = col
        error = self._error if self._error is not None else np.broadcast_to(np.array([None]), (self.n,))
        return Decoded(self.n, self.ok, error, columns, self.raw)


def _widen_for(col: Column, values: Any) -> None:
    """Give a dense column a wider integer type when ``values`` would not fit its narrow one."""
    have = col.values.dtype
    if have.kind not in "iu":
        return
    new = values.dtype if isinstance(values, np.ndarray) else np.min_scalar_type(values)
    if not np.can_cast(new, have, "safe"):
        col.values = col.values.astype(np.promote_types(have, new))


def _full_length(mask: Any, n: int) -> np.ndarray:
    """A mask (array of n, or one value for all rows) as an array of n."""
    if isinstance(mask, np.ndarray) and mask.shape == (n,):
        return mask
    return np.broadcast_to(mask, (n,))


def _read_only_zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """n zeros (None for objects) that nobody may write: placeholders of the fields no row has."""
    if dtype == _OBJECT:
        return np.broadcast_to(np.array([None]), (n,))
    zeros = np.zeros(n, dtype=dtype)  # untouched pages: costs nothing until read
    zeros.flags.writeable = False
    return zeros
