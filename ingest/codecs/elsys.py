"""Elsys ERS room sensor codec (``elsys/ers``): temperature, humidity, light, motion, CO2 and supply voltage.

The payload is a sequence of ``[type][value]`` records (big-endian values), parsed from the first byte:

==== =============== ======================== ======
type key             value                    unit
==== =============== ======================== ======
0x01 ``temperature`` int16 / 10               degC
0x02 ``humidity``    uint8                    %RH
0x04 ``light``       uint16                   lux
0x05 ``motion``      uint8                    PIR count since the last uplink
0x06 ``co2``         uint16                   ppm (ERS CO2)
0x07 ``vdd``         uint16                   mV
==== =============== ======================== ======

A repeated type overwrites the earlier value. A type the official Elsys decoder does not know (0x00, 0x1D and
above, e.g. 0x3D debug) ends parsing and the fields decoded so far are kept. The fPort is not looked at.

Rows are rejected (``ok`` False) where the format description does not say what the result is:

* a record whose value runs past the end of the frame (``"truncated record: ..."``), and
* a type the official decoder knows but this codec does not decode (0x03 acceleration, 0x08 .. 0x1C: analog,
  GPS, pulse, external sensors, pressure, sound, TVOC ...; ``"unsupported record type 0x.."``), because
  emitting the object without those keys would differ from the official output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Column, Decoded, EncodeError, FieldSpec
from .codec_registry import register
from .encoding import batch_size, field_values
from .fill_level import column_or_absent
from .record_layout import ADVANCE, STOP, ByteAt, RecordCodec, Step, Values, uint_at

__all__ = ["ElsysERS"]

_TRUNCATED = 2
_UNSUPPORTED = 3

# (type byte, key, value bytes, signed, scale divisor) in encoding order
_RECORDS: tuple[tuple[int, str, int, bool, int], ...] = (
    (0x01, "temperature", 2, True, 10),
    (0x02, "humidity", 1, False, 1),
    (0x04, "light", 2, False, 1),
    (0x05, "motion", 1, False, 1),
    (0x06, "co2", 2, False, 1),
    (0x07, "vdd", 2, False, 1),
)
_KNOWN_TO_OFFICIAL = frozenset(range(0x01, 0x1D))

_KIND = np.full(256, -1, dtype=np.int64)
_CODE = np.full(256, STOP, dtype=np.int64)
for _t in _KNOWN_TO_OFFICIAL:
    _CODE[_t] = _UNSUPPORTED
for _k, (_t, *_rest) in enumerate(_RECORDS):
    _KIND[_t] = _k
    _CODE[_t] = ADVANCE
_SIZE = np.array([1 + r[2] for r in _RECORDS] + [1], dtype=np.int64)  # last entry: kind -1
_BY_TYPE = {r[0]: k for k, r in enumerate(_RECORDS)}


def _message(code: int, detail: int) -> str:
    if code == _TRUNCATED:
        t, key, width = _RECORDS[detail][:3]
        return f"truncated record: type 0x{t:02x} ({key}) needs {width} value byte{'s' if width > 1 else ''}"
    return f"unsupported record type 0x{detail:02x}"


def _classify(byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step:
    t = byte_at(0)
    kind = _KIND[t]
    size = _SIZE[kind]
    code = _CODE[t]
    code = np.where((code == ADVANCE) & (pos + size > end), _TRUNCATED, code)
    return Step(kind, size, code, np.where(kind >= 0, kind, t))


class ElsysERS(RecordCodec):
    id = "elsys/ers"
    f_ports = (5,)
    fields = (
        FieldSpec("temperature", "float", "degC", "air temperature"),
        FieldSpec("humidity", "int", "%RH", "relative humidity"),
        FieldSpec("light", "int", "lx", "illuminance"),
        FieldSpec("motion", "int", "count", "PIR motion count since the last uplink"),
        FieldSpec("co2", "int", "ppm", "CO2 concentration (ERS CO2)"),
        FieldSpec("vdd", "int", "mV", "supply (battery) voltage"),
    )
    quantities = ("temperature_c", "humidity_pct", "light_lux", "motion", "co2_ppm", "battery_v")

    n_kinds = len(_RECORDS)
    header_len = 1  # bytes that identify a record

    def classify(self, byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step:
        return _classify(byte_at, pos, end)

    def read(self, kind: int, byte_at: ByteAt) -> Values:
        _, key, width, signed, scale = _RECORDS[kind]
        v = uint_at(byte_at, 1, width, True)
        if signed:
            v = v - ((v & (1 << (8 * width - 1))) << 1)
        return Values({key: v / scale if scale != 1 else v})

    def message(self, code: int, detail: int) -> str:
        return _message(code, detail)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        i, n = 0, len(payload)
        while i < n:
            t = payload[i]
            k = _BY_TYPE.get(t)
            if k is None:
                if t in _KNOWN_TO_OFFICIAL:
                    return {"errors": [_message(_UNSUPPORTED, t)]}
                break
            _, key, width, signed, scale = _RECORDS[k]
            if i + 1 + width > n:
                return {"errors": [_message(_TRUNCATED, k)]}
            v = int.from_bytes(payload[i + 1 : i + 1 + width], "big", signed=signed)
            obj[key] = v / scale if scale != 1 else v
            i += 1 + width
        return obj

    def encode(self, f_port: int, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Encode the given fields as records in the order of the table above. Temperatures are rounded to the
        device's 0.1 degC resolution."""
        keys = {r[1] for r in _RECORDS}
        for name in columns:
            if name not in keys:
                raise EncodeError(self.id, name, "not a field of this codec")
        if not columns:
            raise EncodeError(self.id, "*", "no field given")
        n = batch_size(columns)
        parts = []
        for t, key, width, signed, scale in _RECORDS:
            if key not in columns:
                continue
            values = field_values(self.id, columns, key, n)
            if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and not np.isfinite(values).all()):
                raise EncodeError(self.id, key, "values must be finite numbers")
            raw = np.round(values.astype(np.float64) * scale).astype(np.int64)
            if scale == 1 and values.dtype.kind == "f" and not np.array_equal(raw, values):
                raise EncodeError(self.id, key, "values must be whole numbers")
            lo, hi = (-(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1) if signed else (0, (1 << (8 * width)) - 1)
            if raw.size and (raw.min() < lo or raw.max() > hi):
                raise EncodeError(self.id, key, f"values must lie in {lo / scale:g}..{hi / scale:g}")
            block = np.empty((n, 1 + width), dtype=np.uint8)
            block[:, 0] = t
            u = raw & ((1 << (8 * width)) - 1)
            for b in range(width):
                block[:, 1 + b] = (u >> (8 * (width - 1 - b))) & 0xFF
            parts.append(block)
        data = np.concatenate(parts, axis=1)
        return data.reshape(-1), np.arange(n + 1, dtype=np.int64) * data.shape[1]

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        vdd = column_or_absent(decoded, "vdd")
        return {
            "temperature_c": column_or_absent(decoded, "temperature"),
            "humidity_pct": column_or_absent(decoded, "humidity"),
            "light_lux": column_or_absent(decoded, "light"),
            "motion": column_or_absent(decoded, "motion"),
            "co2_ppm": column_or_absent(decoded, "co2"),
            "battery_v": Column(vdd.values / 1000.0, vdd.present),
        }


register(ElsysERS())
