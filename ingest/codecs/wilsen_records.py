"""The record table of the Pepperl+Fuchs WILSEN.sonic.level payload, its temperature rounding and its encoder.

Shared by the decoder in :mod:`ingest.codecs.pepperl_fuchs` and by the encoder below (the simulator's bytes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .base import EncodeError, FieldKind
from .encoding import batch_size, field_values

__all__ = ["RECORDS", "WilsenRecord", "encode_records", "round1", "round1_row"]


@dataclass(frozen=True)
class WilsenRecord:
    rid: int  # record ID (uint16 BE after the length byte)
    key: str
    size: int  # value bytes
    kind: FieldKind
    unit: str
    description: str
    signed: bool = False
    scale: int = 1  # the value is the integer divided by this


#: Records in encoding order.
RECORDS: tuple[WilsenRecord, ...] = (
    WilsenRecord(0x0B01, "proxx", 2, "int", "cm", "distance from the sensor to the surface"),
    WilsenRecord(0x0B02, "proxx_mm", 2, "int", "mm", "distance from the sensor to the surface"),
    WilsenRecord(0x0B06, "fillinglvl", 1, "int", "%", "fill level computed by the sensor"),
    WilsenRecord(0x0B07, "amplitude", 1, "int", "", "echo amplitude (raw)"),
    WilsenRecord(0x0201, "temp", 4, "float", "degC", "temperature (float32, one decimal)"),
    WilsenRecord(0x5101, "battery_vol", 1, "float", "V", "battery voltage", scale=10),
    WilsenRecord(0x5001, "latitude", 4, "float", "deg", "GPS latitude", signed=True, scale=1_000_000),
    WilsenRecord(0x5002, "longitude", 4, "float", "deg", "GPS longitude", signed=True, scale=1_000_000),
    WilsenRecord(0x2A25, "serial_nr", 14, "str", "", "serial number"),
    WilsenRecord(0x3101, "lora_count", 2, "int", "", "LoRa transmissions"),
    WilsenRecord(0x3102, "gps_count", 2, "int", "", "GPS acquisitions"),
    WilsenRecord(0x3103, "us_sensor_count", 4, "int", "", "ultrasonic measurements"),
)

_EXACT = float(1 << 52)  # from here on every double is an integer


def round1(x: np.ndarray) -> np.ndarray:
    """JavaScript ``Number(x.toFixed(1))`` for finite float32 values held in float64: the exact value rounded
    to one decimal, ties away from zero, -0 as 0. ``x * 10`` is exact (24 + 4 significant bits)."""
    y = x * 10.0
    a = np.abs(y)
    n = np.where(a >= _EXACT, a, np.floor(a + 0.5))
    return np.copysign(n, y) / 10.0 + 0.0


def round1_row(x: float) -> float:
    y = x * 10.0
    a = abs(y)
    n = a if a >= _EXACT else float(math.floor(a + 0.5))
    return math.copysign(n, y) / 10.0 + 0.0


def _raw(codec_id: str, rec: WilsenRecord, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind not in "iubf" or (values.dtype.kind == "f" and not np.isfinite(values).all()):
        raise EncodeError(codec_id, rec.key, "values must be finite numbers")
    if rec.scale == 1 and values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        raise EncodeError(codec_id, rec.key, "values must be whole numbers")
    raw = np.round(values.astype(np.float64) * rec.scale).astype(np.int64)
    bits = 8 * rec.size
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if rec.signed else (0, (1 << bits) - 1)
    if raw.size and (raw.min() < lo or raw.max() > hi):
        raise EncodeError(codec_id, rec.key, f"values must lie in {lo / rec.scale:g}..{hi / rec.scale:g}")
    return raw & ((1 << bits) - 1)


def _value_bytes(codec_id: str, rec: WilsenRecord, values: np.ndarray) -> np.ndarray:
    n = len(values)
    if rec.key == "serial_nr":
        out = np.zeros((n, 14), dtype=np.uint8)
        for r, text in enumerate(values.tolist()):
            try:
                if not isinstance(text, str) or "\0" in text:
                    raise ValueError
                text_bytes = text.encode("latin-1")
                if len(text_bytes) > 14:
                    raise ValueError
            except (ValueError, UnicodeEncodeError):
                message = "values must be Latin-1 text of at most 14 characters, no NUL"
                raise EncodeError(codec_id, rec.key, message) from None
            out[r, : len(text_bytes)] = np.frombuffer(text_bytes, dtype=np.uint8)
        return out
    if rec.key == "temp":
        if values.dtype.kind not in "iuf" or not np.isfinite(values.astype(np.float64)).all():
            raise EncodeError(codec_id, rec.key, "values must be finite numbers")
        with np.errstate(over="ignore"):
            f32 = values.astype(np.float32)
        if not np.isfinite(f32).all():
            raise EncodeError(codec_id, rec.key, "values must fit a float32")
        raw = f32.view(np.uint32).astype(np.int64)
    else:
        raw = _raw(codec_id, rec, values)
    out = np.empty((n, rec.size), dtype=np.uint8)
    for b in range(rec.size):
        out[:, b] = (raw >> (8 * (rec.size - 1 - b))) & 0xFF
    return out


def encode_records(codec_id: str, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(buf, offsets)`` of frames holding one record per given field, in :data:`RECORDS` order."""
    by_key = {r.key: r for r in RECORDS}
    for name in columns:
        if name not in by_key:
            reason = "is derived from the frame" if name == "payload" else "not a field of this codec"
            raise EncodeError(codec_id, name, reason)
    if not columns:
        raise EncodeError(codec_id, "*", "no field given")
    n = batch_size(columns)
    parts = []
    for rec in RECORDS:
        if rec.key not in columns:
            continue
        values = field_values(codec_id, columns, rec.key, n)
        head = np.empty((n, 3), dtype=np.uint8)
        head[:, 0] = 2 + rec.size
        head[:, 1] = rec.rid >> 8
        head[:, 2] = rec.rid & 0xFF
        parts.append(head)
        parts.append(_value_bytes(codec_id, rec, values))
    data = np.concatenate(parts, axis=1)
    return data.reshape(-1), np.arange(n + 1, dtype=np.int64) * data.shape[1]
