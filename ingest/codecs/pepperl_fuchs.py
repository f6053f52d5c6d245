"""Pepperl+Fuchs WILSEN.sonic.level codec (``pepperl-fuchs/wilsen-sonic-level``): ultrasonic container fill
level.

The frame is a sequence of ``[L][ID: uint16 BE][value: L - 2 bytes]`` records; the next record starts at
offset + 1 + L. Every object has ``payload`` (the frame as uppercase hex). Records (:data:`RECORDS`) decode
to ``temp`` (float32 BE rounded to one decimal like JavaScript ``toFixed(1)``: ties away from zero on the
exact float32 value, -0 emitted as 0), ``proxx`` (cm), ``proxx_mm``, ``fillinglvl`` (%), ``amplitude``,
``serial_nr`` (14 bytes of text ending at the first NUL), the ``lora_count`` / ``gps_count`` /
``us_sensor_count`` counters, ``latitude`` / ``longitude`` (int32 / 1e6) and ``battery_vol`` (uint8 / 10 V).
Other IDs (configuration acknowledgements 0xF1xx..0xF8xx, valve records 0x0Cxx, ...) are skipped using their
length byte. A repeated record overwrites the earlier value. The fPort is not looked at.

A record longer than its value (L - 2 above the value size) is read from its leading value bytes, as the
official decoder does. Rows are rejected (``ok`` False) where the format description does not define a
result:

* ``"truncated record header: ..."``: fewer than 3 bytes left where a record starts;
* ``"malformed record: ..."``: a length byte below 2 (the record would not even hold its ID);
* ``"truncated record: ..."``: a record running past the end of the frame;
* ``"record 0x.... (key) too short: ..."``: a known record with fewer value bytes than its encoding needs;
* ``"temp is not a finite float32: ..."``: the (last) temperature record holds an infinity or NaN.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Column, Decoded, FieldSpec
from .codec_registry import register
from .fill_level import column_or_absent, fill_pct, param
from .raw_columns import RawColumn
from .record_layout import ADVANCE, ByteAt, RecordCodec, Step, Values, as_batch, text_at, uint_at
from .wilsen_records import RECORDS, encode_records, round1, round1_row

__all__ = ["WilsenSonicLevel"]

_TRUNC_HEADER = 2
_MALFORMED = 3
_TRUNCATED = 4
_SHORT = 5
_NOT_FINITE = 6

_KIND = np.full(1 << 16, -1, dtype=np.int64)
for _k, _rec in enumerate(RECORDS):
    _KIND[_rec.rid] = _k
_VSIZE = np.array([r.size for r in RECORDS] + [0], dtype=np.int64)  # last entry: kind -1 (skipped records)
_BY_ID = {r.rid: k for k, r in enumerate(RECORDS)}
_TEMP = next(k for k, r in enumerate(RECORDS) if r.key == "temp")


def _message(code: int, detail: int) -> str:
    if code == _TRUNC_HEADER:
        plural = "s" if detail != 1 else ""
        return f"truncated record header: {detail} byte{plural} left where length and ID need 3"
    if code == _MALFORMED:
        return f"malformed record: length byte {detail} is below 2"
    if code == _TRUNCATED:
        return f"truncated record: a record of length {detail} runs past the end of the payload"
    if code == _SHORT:
        r = RECORDS[detail]
        return f"record 0x{r.rid:04X} ({r.key}) too short: needs {r.size} value byte{'s' if r.size > 1 else ''}"
    return f"temp is not a finite float32: 0x{detail:08X}"


def _classify(byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step:
    length = byte_at(0).astype(np.int64)
    kind = _KIND[(byte_at(1).astype(np.int64) << 8) | byte_at(2)]
    code = np.where((kind >= 0) & (length - 2 < _VSIZE[kind]), _SHORT, ADVANCE)
    detail = kind
    past = pos + 1 + length > end
    code = np.where(past, _TRUNCATED, code)
    detail = np.where(past, length, detail)
    small = length < 2
    code = np.where(small, _MALFORMED, code)
    detail = np.where(small, length, detail)
    short_header = pos + 3 > end
    code = np.where(short_header, _TRUNC_HEADER, code)
    detail = np.where(short_header, end - pos, detail)
    return Step(kind, 1 + length, code, detail)


class WilsenSonicLevel(RecordCodec):
    id = "pepperl-fuchs/wilsen-sonic-level"
    f_ports = (1,)
    fields = (FieldSpec("payload", "str", "", "the whole frame as uppercase hex"),) + tuple(
        FieldSpec(r.key, r.kind, r.unit, r.description) for r in RECORDS
    )
    quantities = ("distance_mm", "fill_pct", "temperature_c", "battery_v")

    n_kinds = len(RECORDS)
    header_len = 3  # bytes that identify a record

    def classify(self, byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step:
        return _classify(byte_at, pos, end)

    def read(self, kind: int, byte_at: ByteAt) -> Values:
        rec = RECORDS[kind]
        if rec.key == "serial_nr":
            return Values({rec.key: text_at(byte_at, 3, 14)})
        raw = uint_at(byte_at, 3, rec.size, True)
        if rec.key == "temp":
            with np.errstate(invalid="ignore"):  # signalling NaNs; rejected below
                x = raw.astype(np.uint32).view(np.float32).astype(np.float64)
            finite = np.isfinite(x)
            return Values({rec.key: round1(np.where(finite, x, 0.0))}, ~finite, _NOT_FINITE, raw)
        if rec.signed:
            raw = raw - ((raw & 0x80000000) << 1)
        return Values({rec.key: raw / rec.scale if rec.scale != 1 else raw})

    def message(self, code: int, detail: int) -> str:
        return _message(code, detail)

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        _, buf, offsets = as_batch(f_port, buf, offsets)
        decoded = super().decode(f_port, buf, offsets)
        decoded.columns["payload"] = RawColumn(buf, offsets, decoded.ok.copy(), "hex")
        return decoded

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        obj: dict[str, Any] = {"payload": payload.hex().upper()}
        i, n = 0, len(payload)
        temp_raw = None
        while i < n:
            if i + 3 > n:
                return {"errors": [_message(_TRUNC_HEADER, n - i)]}
            length = payload[i]
            if length < 2:
                return {"errors": [_message(_MALFORMED, length)]}
            if i + 1 + length > n:
                return {"errors": [_message(_TRUNCATED, length)]}
            k = _BY_ID.get(int.from_bytes(payload[i + 1 : i + 3], "big"))
            if k is not None:
                rec = RECORDS[k]
                if length - 2 < rec.size:
                    return {"errors": [_message(_SHORT, k)]}
                value = payload[i + 3 : i + 3 + rec.size]
                if rec.key == "serial_nr":
                    obj[rec.key] = value.split(b"\0", 1)[0].decode("latin-1")
                elif rec.key == "temp":
                    temp_raw = int.from_bytes(value, "big")
                    obj[rec.key] = None
                else:
                    raw = int.from_bytes(value, "big", signed=rec.signed)
                    obj[rec.key] = raw / rec.scale if rec.scale != 1 else raw
            i += 1 + length
        if temp_raw is not None:
            x = struct.unpack(">f", temp_raw.to_bytes(4, "big"))[0]
            if not math.isfinite(x):
                return {"errors": [_message(_NOT_FINITE, temp_raw)]}
            obj["temp"] = round1_row(x)
        return obj

    def encode(self, f_port: int, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Encode the given fields as records in the order of :data:`RECORDS` (``payload`` is derived)."""
        return encode_records(self.id, columns)

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        mm = column_or_absent(decoded, "proxx_mm")
        cm = column_or_absent(decoded, "proxx")
        distance = Column(np.where(mm.present, mm.values, cm.values * 10.0), mm.present | cm.present)
        from_depth = fill_pct(distance, params)
        own = column_or_absent(decoded, "fillinglvl")
        depth_known = np.isfinite(param(params, "depth_mm", decoded.n))
        fill = Column(
            np.where(depth_known, from_depth.values, own.values),
            np.where(depth_known, from_depth.present, own.present),
        )
        return {
            "distance_mm": distance,
            "fill_pct": fill,
            "temperature_c": column_or_absent(decoded, "temp"),
            "battery_v": column_or_absent(decoded, "battery_vol"),
        }


register(WilsenSonicLevel())
