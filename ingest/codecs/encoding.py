"""Helpers for the codecs' ``encode()``: reading field inputs, range-checked integers, labels, byte layouts.

``encode(f_port, columns)`` gets one array (or scalar) per field name; these helpers turn those into checked
integers and ``(n, width)`` byte blocks, raising :class:`EncodeError` (with the field) on values the format
cannot represent.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain
from typing import Any

import numpy as np

from .base import EncodeError

__all__ = [
    "batch_size",
    "be_bytes",
    "dotted_bytes",
    "field_values",
    "le_bytes",
    "pack_lists",
    "to_codes",
    "to_ints",
]


def batch_size(columns: Mapping[str, Any]) -> int:
    """Number of rows of an ``encode()`` input: the length of its first array or list value (scalars apply
    to every row; with scalars only, one row)."""
    for v in columns.values():
        if isinstance(v, np.ndarray):
            if v.ndim:
                return int(v.shape[0])
        elif isinstance(v, list | tuple):
            return len(v)
    return 1 if columns else 0


def field_values(codec_id: str, columns: Mapping[str, Any], name: str, n: int, default: Any = None) -> np.ndarray:
    """The ``encode()`` input of one field as an array of n values; ``default`` when the field is not given
    (an :class:`EncodeError` when there is no default)."""
    if name not in columns:
        if default is None:
            raise EncodeError(codec_id, name, "missing")
        return np.full(n, default)
    a = np.asarray(columns[name])
    if a.ndim == 0:
        return np.full(n, a.item())
    if a.shape != (n,):
        raise EncodeError(codec_id, name, f"expected {n} values, got shape {a.shape}")
    return a


def to_ints(codec_id: str, name: str, values: Any, lo: int, hi: int, scale: float = 1) -> np.ndarray:
    """``round(values * scale)`` as int64, checked against ``lo..hi`` (an :class:`EncodeError` otherwise)."""
    try:
        v = np.asarray(values, dtype=np.float64) * scale
    except (TypeError, ValueError):
        raise EncodeError(codec_id, name, "not a number") from None
    if not np.isfinite(v).all():
        raise EncodeError(codec_id, name, "not a finite number")
    r = np.round(v).astype(np.int64)
    if r.size and (r.min() < lo or r.max() > hi):
        raise EncodeError(codec_id, name, f"out of range {lo / scale:g}..{hi / scale:g}")
    return r


def to_codes(codec_id: str, name: str, values: Any, mapping: Mapping[Any, int]) -> np.ndarray:
    """Map labels (e.g. ``"ON"``) to integer codes through ``mapping``, vectorised over the unique labels."""
    a = np.asarray(values)
    uniq, inverse = np.unique(a, return_inverse=True)
    table = np.empty(len(uniq), dtype=np.int64)
    for i, u in enumerate(uniq.tolist()):
        if u not in mapping:
            raise EncodeError(codec_id, name, f"unknown value {u!r}")
        table[i] = mapping[u]
    return table[inverse.reshape(-1)]


def pack_lists(codec_id: str, name: str, values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(buf, offsets)`` from one byte-value list per row (a ``bytes``-like field such as a debug dump)."""
    rows = [list(v) for v in values]
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(offsets[-1]))
    if flat.size and (flat.min() < 0 or flat.max() > 255):
        raise EncodeError(codec_id, name, "byte values must be 0..255")
    return flat.astype(np.uint8), offsets


def dotted_bytes(codec_id: str, name: str, values: Any, parts: int = 3) -> np.ndarray:
    """Version strings such as ``"2.4.9"`` as ``(n, parts)`` bytes, parsed once per distinct string."""
    uniq, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)
    table = np.zeros((len(uniq), parts), dtype=np.uint8)
    for i, text in enumerate(uniq.tolist()):
        items = text.split(".")
        if len(items) != parts or not all(x.isdigit() and int(x) < 256 for x in items):
            raise EncodeError(codec_id, name, f"not {parts} dot-separated numbers 0..255: {text!r}")
        table[i] = [int(x) for x in items]
    return table[inverse.reshape(-1)]


def be_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """Integers as ``(n, width)`` big-endian bytes (two's complement for negative values)."""
    v = np.asarray(values, dtype=np.int64)
    shifts = np.arange(8 * (width - 1), -1, -8, dtype=np.int64)
    return ((v[:, None] >> shifts) & 0xFF).astype(np.uint8)


def le_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """Integers as ``(n, width)`` little-endian bytes (two's complement for negative values)."""
    return be_bytes(values, width)[:, ::-1]
