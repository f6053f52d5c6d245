"""Bin fill level from an ultrasonic distance and the bin's geometry, for the codecs' domain mappings.

A sensor mounted in the lid measures the distance to the surface of the waste. With ``depth_mm`` (sensor to
the bottom: the reading of an empty bin) and ``full_mm`` (sensor to the level that counts as full, 0 when
not given)::

    fill_pct = (depth_mm - distance_mm) / (depth_mm - full_mm) * 100, clipped to 0..100

Rows without a distance, without a depth, or with a geometry that makes no sense (depth not beyond the full
level, non-finite values) get no fill level.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .base import Column, Decoded

__all__ = ["column_or_absent", "fill_pct", "param"]


def param(params: Mapping[str, np.ndarray], name: str, n: int) -> np.ndarray:
    """Per-row device parameter as float64 (NaN where unknown, including when the key is missing)."""
    if name not in params:
        return np.full(n, np.nan)
    values = np.asarray(params[name], dtype=np.float64)
    return np.broadcast_to(values, (n,)).astype(np.float64, copy=True)


def fill_pct(distance: Column, params: Mapping[str, np.ndarray]) -> Column:
    """Fill level in percent from a distance column in millimetres (see the module docstring)."""
    n = len(distance.present)
    depth = param(params, "depth_mm", n)
    full = param(params, "full_mm", n)
    full = np.where(np.isnan(full), 0.0, full)
    d = distance.values.astype(np.float64)
    span = depth - full
    valid = distance.present & np.isfinite(depth) & np.isfinite(full) & np.isfinite(d) & (span > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.clip((depth - d) / np.where(valid, span, 1.0) * 100.0, 0.0, 100.0)
    return Column(np.where(valid, pct, 0.0), valid)


def column_or_absent(decoded: Decoded, name: str, dtype: type = np.float64) -> Column:
    """A decoded field as a float Column, present on the ok rows that have it (absent if undeclared)."""
    col = decoded.columns.get(name)
    if col is None:
        return Column(np.zeros(decoded.n, dtype=dtype), np.zeros(decoded.n, dtype=bool))
    present = col.present & decoded.ok
    if col.null is not None:
        present = present & ~col.null
    return Column(np.where(present, col.values, 0).astype(dtype), present)
