"""Milesight channel/type record codecs: EM310-UDL (ultrasonic bin level) and VS133 (people line counter).

Both payloads are sequences of ``[channel_id][channel_type][value]`` records, parsed from the first byte to
the end. A record whose (channel, type) pair is not in the codec's table ends parsing; the fields read so
far are the result (possibly ``{}``). A repeated record overwrites the earlier value. The fPort is not
looked at.

Frames the official decoder would read past their end are rejected (``ok`` False) rather than decoded, because
the format description says nothing about them: a single byte left where a two-byte header should start
(``"truncated record header: ..."``), or a known record whose value runs past the end
(``"truncated record: ..."``).

Decoding is vectorised by layout with :func:`ingest.codecs.record_layout.decode_records`;
:meth:`decode_row` is the per-message reference implementation of the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .base import Column, Decoded, EncodeError, FieldSpec
from .codec_registry import register
from .encoding import batch_size, field_values
from .fill_level import column_or_absent, fill_pct
from .record_layout import ADVANCE, STOP, ByteAt, RecordCodec, Step, Values, uint_at

__all__ = ["EM310UDL", "VS133", "MilesightCodec", "Record"]

_TRUNC_HEADER = 2
_TRUNC_RECORD = 3


@dataclass(frozen=True)
class Record:
    """One record kind: its header pair, its value size and the unsigned little-endian fields in the value."""

    channel: int
    ctype: int
    size: int
    fields: tuple[tuple[str, int, int], ...]  # (output key, offset in the value, width in bytes)


class MilesightCodec(RecordCodec):
    """Shared decoder, reference decoder and encoder of a Milesight record table (``records``)."""

    records: ClassVar[tuple[Record, ...]]
    _kind_lut: ClassVar[np.ndarray]
    _size_lut: ClassVar[np.ndarray]
    _by_header: ClassVar[dict[tuple[int, int], int]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._kind_lut = np.full(1 << 16, -1, dtype=np.int64)
        cls._by_header = {}
        for k, rec in enumerate(cls.records):
            cls._kind_lut[(rec.channel << 8) | rec.ctype] = k
            cls._by_header[(rec.channel, rec.ctype)] = k
        # indexed by kind; the extra last entry (0) is what kind -1 (unknown record) picks up
        cls._size_lut = np.array([2 + r.size for r in cls.records] + [0], dtype=np.int64)

    # --- hooks ---------------------------------------------------------------------------------------------

    def value(self, name: str, raw: np.ndarray) -> np.ndarray:
        """Convert raw unsigned integers of field ``name`` to its output values."""
        return raw

    def value_row(self, name: str, raw: int) -> Any:
        return raw

    def raw(self, name: str, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`value` for the encoder: output values -> raw unsigned integers."""
        return _ints(self.id, name, values)

    # --- decoding ------------------------------------------------------------------------------------------

    header_len = 2  # bytes that identify a record

    @property
    def n_kinds(self) -> int:
        return len(self.records)

    def classify(self, byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step:
        kind = self._kind_lut[(byte_at(0).astype(np.int64) << 8) | byte_at(1)]
        size = self._size_lut[kind]
        code = np.where(kind < 0, STOP, np.where(pos + size > end, _TRUNC_RECORD, ADVANCE))
        code = np.where(pos + 2 > end, _TRUNC_HEADER, code)
        return Step(kind, size, code, kind)

    def read(self, kind: int, byte_at: ByteAt) -> Values:
        return Values(
            {
                name: self.value(name, uint_at(byte_at, 2 + off, width, False))
                for name, off, width in self.records[kind].fields
            }
        )

    def message(self, code: int, detail: int) -> str:
        if code == _TRUNC_HEADER:
            return "truncated record header: 1 byte left where channel and type need 2"
        rec = self.records[detail]
        return (
            f"truncated record: channel 0x{rec.channel:02x} type 0x{rec.ctype:02x} "
            f"needs {rec.size} value byte{'s' if rec.size > 1 else ''}"
        )

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        i, n = 0, len(payload)
        while i < n:
            if i + 2 > n:
                return {"errors": [self.message(_TRUNC_HEADER, 0)]}
            k = self._by_header.get((payload[i], payload[i + 1]))
            if k is None:
                break
            rec = self.records[k]
            if i + 2 + rec.size > n:
                return {"errors": [self.message(_TRUNC_RECORD, k)]}
            for name, off, width in rec.fields:
                start = i + 2 + off
                raw = int.from_bytes(payload[start : start + width], "little")
                target = obj
                *parents, key = name.split(".")
                for p in parents:
                    target = target.setdefault(p, {})
                target[key] = self.value_row(name, raw)
            i += 2 + rec.size
        return obj

    # --- encoding ------------------------------------------------------------------------------------------

    def encode(self, f_port: int, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Encode the records whose fields are all given, in table order (the fPort is not in the bytes)."""
        known = {name for rec in self.records for name, _, _ in rec.fields}
        for name in columns:
            if name not in known:
                raise EncodeError(self.id, name, "not a field of this codec")
        n = batch_size(columns)
        parts: list[np.ndarray] = []
        for rec in self.records:
            names = [name for name, _, _ in rec.fields]
            given = [name in columns for name in names]
            if not any(given):
                continue
            if not all(given):
                missing = names[given.index(False)]
                raise EncodeError(self.id, missing, f"needed with {', '.join(x for x in names if x in columns)}")
            block = np.zeros((n, 2 + rec.size), dtype=np.uint8)
            block[:, 0] = rec.channel
            block[:, 1] = rec.ctype
            for name, off, width in rec.fields:
                raw = self.raw(name, field_values(self.id, columns, name, n))
                if raw.size and (raw.min() < 0 or raw.max() >= 1 << (8 * width)):
                    raise EncodeError(self.id, name, f"values must lie in 0..{(1 << (8 * width)) - 1}")
                for b in range(width):
                    block[:, 2 + off + b] = (raw >> (8 * b)) & 0xFF
            parts.append(block)
        if not parts:
            raise EncodeError(self.id, "*", "no field given")
        data = np.concatenate(parts, axis=1)
        return data.reshape(-1), np.arange(n + 1, dtype=np.int64) * data.shape[1]


def _ints(codec_id: str, name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise EncodeError(codec_id, name, "values must be whole numbers")
        return values.astype(np.int64)
    raise EncodeError(codec_id, name, f"values must be integers, got {values.dtype}")


class EM310UDL(MilesightCodec):
    id = "milesight-iot/em310-udl"
    f_ports = (85,)
    fields = (
        FieldSpec("battery", "int", "%", "battery level"),
        FieldSpec("distance", "int", "mm", "distance from the sensor to the surface"),
        FieldSpec("tilt", "str", "", '"normal", or "tilt" when the sensor is not level'),
    )
    quantities = ("distance_mm", "fill_pct", "battery_pct")
    records = (
        Record(0x01, 0x75, 1, (("battery", 0, 1),)),
        Record(0x03, 0x82, 2, (("distance", 0, 2),)),
        Record(0x04, 0x00, 1, (("tilt", 0, 1),)),
    )
    _TILT = np.array(["normal", "tilt"], dtype=object)

    def value(self, name: str, raw: np.ndarray) -> np.ndarray:
        return self._TILT[(raw != 0).astype(np.int64)] if name == "tilt" else raw

    def value_row(self, name: str, raw: int) -> Any:
        return ("tilt" if raw else "normal") if name == "tilt" else raw

    def raw(self, name: str, values: np.ndarray) -> np.ndarray:
        if name != "tilt":
            return _ints(self.id, name, values)
        if values.dtype.kind == "b":
            return values.astype(np.int64)
        bad = ~np.isin(values.astype(object), ["normal", "tilt"])
        if bad.any():
            raise EncodeError(self.id, name, 'values must be "normal" or "tilt"')
        returned: np.ndarray = (values.astype(object) == "tilt").astype(np.int64)
        return returned

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        distance = column_or_absent(decoded, "distance")
        return {
            "distance_mm": distance,
            "fill_pct": fill_pct(distance, params),
            "battery_pct": column_or_absent(decoded, "battery"),
        }


def _line_records() -> tuple[Record, ...]:
    recs: list[Record] = []
    for line in range(1, 5):
        base = 3 * (line - 1)
        p = f"line_{line}."
        recs.append(Record(0x03 + base, 0xD2, 4, ((p + "total_in", 0, 4),)))
        recs.append(Record(0x04 + base, 0xD2, 4, ((p + "total_out", 0, 4),)))
        recs.append(Record(0x05 + base, 0xCC, 4, ((p + "period_in", 0, 2), (p + "period_out", 2, 2))))
    return tuple(recs)


class VS133(MilesightCodec):
    id = "milesight-iot/vs133"
    f_ports = (85,)
    records = _line_records()
    fields = tuple(
        FieldSpec(
            name,
            "int",
            "passengers",
            ("cumulative count" if "total" in name else "count in the last reporting period")
            + (" crossing in" if name.endswith("_in") else " crossing out"),
        )
        for rec in records
        for name, _, _ in rec.fields
    )
    quantities = ("pax_in", "pax_out")

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        result: dict[str, Column] = {}
        for direction in ("in", "out"):
            total = np.zeros(decoded.n, dtype=np.float64)
            present = np.zeros(decoded.n, dtype=bool)
            for line in range(1, 5):
                col = column_or_absent(decoded, f"line_{line}.period_{direction}")
                total += col.values
                present |= col.present
            result[f"pax_{direction}"] = Column(total, present)
        return result


register(EM310UDL())
register(VS133())
