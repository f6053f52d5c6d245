"""Dragino LHT65 temperature & humidity sensor codec.

Data frames are fPort 2, exactly 11 bytes; any other fPort is the error ``"unknown FPort"``. The official
decoder returns no data for fPort-2 frames of another length or with the poll bit (b6 bit 6) set; here those
rows fail with a reason. ``Ext`` (b6 & 0x0F) selects the external sensor and what b7..b10 hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import codec_registry
from .arrays import Builder, Rows, field, hex_column, i32be, lut, pack, row_count, u16be, wrong_length
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .encoding import batch_size, be_bytes, field_values, to_codes, to_ints
from .fill_level import column_or_absent
from .lazy_columns import Later, Lookup
from .row_classes import fail_by_length, frames

__all__ = ["DraginoLHT65"]

FRAME = 11
POLL_REASON = "poll message reply: the decoder returns no data"
_EXT_SENSOR = {0: "No external sensor", 1: "Temperature Sensor"}
_WORK_MODE = {
    4: "Interrupt Sensor send",
    5: "Illumination Sensor",
    6: "ADC Sensor",
    7: "Interrupt Sensor count",
    8: "Interrupt Sensor count",
    9: "DS18B20 & timestamp",
    15: "DS18B20ID",
}
_EXT_SENSOR_LUT = lut([_EXT_SENSOR.get(i) for i in range(16)], 16)
_WORK_MODE_LUT = lut([_WORK_MODE.get(i) for i in range(16)], 16)
_WORK_MODE_KNOWN = np.array([i in _WORK_MODE for i in range(16)])
_HIGH_LOW = lut(["Low", "High"], 2)
_TRUE_FALSE = lut(["False", "True"], 2)
_ID_BYTES = np.array([2, 3, 4, 5, 7, 8, 9, 10])


def _wrong_length(port: int, length: int) -> str:
    return wrong_length(length, str(FRAME))


def _decode_mode(out: Builder, mode: int, rows: np.ndarray, s: np.ndarray) -> None:
    """The fields in b7..b10 of the external sensor modes 4 and above (except the probe temperature)."""
    if mode == 4:
        out.set("Exti_pin_level", rows, Lookup(_HIGH_LOW, (s[:, 7] != 0).view(np.uint8)))
        out.set("Exti_status", rows, Lookup(_TRUE_FALSE, (s[:, 8] != 0).view(np.uint8)))
    elif mode == 5:
        out.set("ILL_lx", rows, u16be(s, 7))
    elif mode == 6:
        out.set("ADC_V", rows, field(s, 7, ">u2") / 1000)
    elif mode == 7:
        out.set("Exit_count", rows, u16be(s, 7))
    elif mode in (8, 9):
        out.set("Exit_count" if mode == 8 else "Systimestamp", rows, i32be(s, 7))
    elif mode == 15:
        out.set("ID", rows, Later(hex_column, s[:, _ID_BYTES], False, " "))


def _flag(v: Any) -> bool:
    """A ``No_connect`` input: set unless None, False, "" or NaN."""
    return v is not None and v is not False and v != "" and v == v


class DraginoLHT65(Codec):
    id = "dragino/lht65"
    f_ports = (2,)
    fields = (
        FieldSpec("BatV", "float", "V", "battery voltage"),
        FieldSpec("Bat_status", "int", "", "0 (low) .. 3 (good)"),
        FieldSpec("TempC_SHT", "float", "degC", "internal temperature"),
        FieldSpec("Hum_SHT", "float", "%RH", "internal humidity"),
        FieldSpec("TempC_DS", "float", "degC", "external probe temperature"),
        FieldSpec("No_connect", "str", "", "set when the external sensor is not connected"),
        FieldSpec("Ext_sensor", "str"),
        FieldSpec("Work_mode", "str"),
        FieldSpec("Exti_pin_level", "str", "", "High/Low"),
        FieldSpec("Exti_status", "str", "", "True/False"),
        FieldSpec("ILL_lx", "int", "lx"),
        FieldSpec("ADC_V", "float", "V"),
        FieldSpec("Exit_count", "int", "", "interrupt count"),
        FieldSpec("Systimestamp", "int", "s", "device time, Unix seconds"),
        FieldSpec("ID", "str", "", "DS18B20 probe id, hex bytes each followed by a space"),
    )
    quantities = ("temperature_c", "humidity_pct", "battery_v")

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = np.asarray(buf, dtype=np.uint8)
        port = np.asarray(f_port, dtype=np.int64)
        out = Builder(row_count(offsets), self.fields)
        data_port = port == 2
        out.fail(slice(None), "unknown FPort", where=~data_port)
        rows, d = frames(buf, offsets, FRAME, exact=True)
        if isinstance(rows, np.ndarray):  # some rows are not 11 bytes long
            wrong = data_port & (np.diff(offsets) != FRAME)
            fail_by_length(out, np.flatnonzero(wrong), port, offsets, _wrong_length)
            data_port = data_port[rows]
        if len(d):
            self._decode_frames(out, rows, d, data_port)
        return out.build()

    @staticmethod
    def _decode_frames(out: Builder, rows: Rows, d: np.ndarray, data_port: np.ndarray) -> None:
        """Decode 11-byte frames: the common fields over all rows, each mode's fields over its own rows. Rows
        of another fPort have failed already: build() clears their columns."""
        b6 = d[:, 6]
        ext = b6 & 0x0F
        e9 = ext == 9
        internal = ext != 15
        out.set("BatV", rows, (field(d, 0, ">u2") & 0x3FFF) / 1000, where=~e9)
        out.set("Bat_status", rows, np.where(e9, d[:, 4], d[:, 0]) >> 6)
        out.set("TempC_SHT", rows, field(d, 2, ">i2") / 100, where=internal)
        out.set("Hum_SHT", rows, (field(d, 4, ">u2") & 0x0FFF) / 10, where=internal)
        out.set("No_connect", rows, "Sensor no connection", where=b6 >= 0x80)
        out.set("Ext_sensor", rows, Lookup(_EXT_SENSOR_LUT, ext), where=ext < 2)
        out.set("Work_mode", rows, Lookup(_WORK_MODE_LUT, ext), where=np.take(_WORK_MODE_KNOWN, ext))
        probe = (ext == 1) | e9  # the probe temperature: b7..b8, or b0..b1 in the timestamp mode
        out.set("TempC_DS", rows, np.where(e9, field(d, 0, ">i2"), field(d, 7, ">i2")) / 100, where=probe)
        rare = np.flatnonzero(ext >= 4)
        if len(rare):
            sub_rows = rare if isinstance(rows, slice) else rows[rare]
            s = np.take(d, rare, axis=0)
            modes = ext[rare]
            for mode in np.flatnonzero(np.bincount(modes, minlength=16)).tolist():
                sel = modes == mode
                _decode_mode(out, mode, sub_rows[sel], s[sel])
        out.fail(rows, POLL_REASON, where=((b6 & 0x40) != 0) & data_port)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        if f_port != 2:
            return {"errors": ["unknown FPort"]}
        b = payload
        if len(b) != FRAME:
            return {"errors": [wrong_length(len(b), str(FRAME))]}
        if b[6] & 0x40:
            return {"errors": [POLL_REASON]}

        def s16(i: int) -> int:
            return int.from_bytes(b[i : i + 2], "big", signed=True)

        def u16(i: int) -> int:
            return b[i] << 8 | b[i + 1]

        ext = b[6] & 0x0F
        obj: dict[str, Any] = {}
        if ext == 9:
            obj["TempC_DS"] = s16(0) / 100
            obj["Bat_status"] = b[4] >> 6
        else:
            obj["BatV"] = (u16(0) & 0x3FFF) / 1000
            obj["Bat_status"] = b[0] >> 6
        if ext != 15:
            obj["TempC_SHT"] = s16(2) / 100
            obj["Hum_SHT"] = (u16(4) & 0x0FFF) / 10
        if b[6] & 0x80:
            obj["No_connect"] = "Sensor no connection"
        if ext in _EXT_SENSOR:
            obj["Ext_sensor"] = _EXT_SENSOR[ext]
        if ext == 1:
            obj["TempC_DS"] = s16(7) / 100
        if ext in _WORK_MODE:
            obj["Work_mode"] = _WORK_MODE[ext]
        if ext == 4:
            obj["Exti_pin_level"] = "High" if b[7] else "Low"
            obj["Exti_status"] = "True" if b[8] else "False"
        elif ext == 5:
            obj["ILL_lx"] = u16(7)
        elif ext == 6:
            obj["ADC_V"] = u16(7) / 1000
        elif ext == 7:
            obj["Exit_count"] = u16(7)
        elif ext == 8:
            obj["Exit_count"] = int.from_bytes(b[7:11], "big", signed=True)
        elif ext == 9:
            obj["Systimestamp"] = int.from_bytes(b[7:11], "big", signed=True)
        elif ext == 15:
            obj["ID"] = "".join(f"{b[i]:02x} " for i in _ID_BYTES.tolist())
        return obj

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 2 frames. The external sensor mode comes from ``Ext_sensor`` or ``Work_mode`` per row (None
        or absent in both: a mode without external data); the other keys are those the mode decodes to."""
        if f_port != 2:
            raise EncodeError(self.id, "f_port", f"unknown FPort {f_port}")
        n = batch_size(columns)
        ext = self._modes(columns, n)
        frames = np.zeros((n, FRAME), dtype=np.uint8)

        def ints(name: str, rows: np.ndarray, lo: int, hi: int, scale: float = 1) -> np.ndarray:
            if not rows.any():
                return np.zeros(0, dtype=np.int64)
            return to_ints(self.id, name, field_values(self.id, columns, name, n)[rows], lo, hi, scale)

        status = to_ints(self.id, "Bat_status", field_values(self.id, columns, "Bat_status", n, 3), 0, 3)
        e9 = ext == 9
        frames[e9, 0:2] = be_bytes(ints("TempC_DS", e9, -0x8000, 0x7FFF, 100), 2)
        frames[e9, 4] = status[e9] << 6
        volts = ints("BatV", ~e9, 0, 0x3FFF, 1000)
        frames[~e9, 0:2] = be_bytes(volts | (status[~e9] << 14), 2)
        internal = ext != 15
        frames[internal, 2:4] = be_bytes(ints("TempC_SHT", internal, -0x8000, 0x7FFF, 100), 2)
        humidity = be_bytes(ints("Hum_SHT", internal, 0, 0x0FFF, 10), 2)
        frames[internal, 4] |= humidity[:, 0]
        frames[internal, 5] = humidity[:, 1]
        no_connect = np.zeros(n, dtype=bool)
        if "No_connect" in columns:
            no_connect[:] = [_flag(v) for v in field_values(self.id, columns, "No_connect", n).tolist()]
        frames[:, 6] = ext | np.where(no_connect, 0x80, 0)
        for mode, name, width, lo, hi, scale in _EXT_VALUES:
            rows = ext == mode
            if rows.any():
                frames[rows, 7 : 7 + width] = be_bytes(ints(name, rows, lo, hi, scale), width)
        e4 = ext == 4
        if e4.any():
            levels = field_values(self.id, columns, "Exti_pin_level", n)[e4]
            frames[e4, 7] = to_codes(self.id, "Exti_pin_level", levels, {"Low": 0, "High": 1})
            states = field_values(self.id, columns, "Exti_status", n)[e4]
            frames[e4, 8] = to_codes(self.id, "Exti_status", states, {"False": 0, "True": 1})
        e15 = ext == 15
        if e15.any():
            ids = field_values(self.id, columns, "ID", n)[e15]
            frames[np.ix_(np.flatnonzero(e15), _ID_BYTES)] = self._id_bytes(ids)
        return pack([(np.arange(n), frames)], n)

    def _modes(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        ext = np.full(n, 2, dtype=np.int64)  # 2: a mode with no external data
        for name, table in (("Ext_sensor", _EXT_SENSOR), ("Work_mode", _WORK_MODE)):
            if name not in columns:
                continue
            values = field_values(self.id, columns, name, n).astype(object)
            given = np.array([v is not None for v in values], dtype=bool)
            codes = {label: mode for mode, label in sorted(table.items(), reverse=True)}
            codes["Interrupt Sensor count"] = 7
            ext[given] = to_codes(self.id, name, values[given].astype(str), codes)
        counts = np.flatnonzero(ext == 7)
        if counts.size:
            given = field_values(self.id, columns, "Exit_count", n)[counts]
            values = to_ints(self.id, "Exit_count", given, -(1 << 31), (1 << 31) - 1)
            ext[counts[(values < 0) | (values > 0xFFFF)]] = 8
        return ext

    def _id_bytes(self, ids: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(np.asarray(ids).astype(str), return_inverse=True)
        table = np.zeros((len(uniq), 8), dtype=np.uint8)
        for i, text in enumerate(uniq.tolist()):
            try:
                raw = bytes.fromhex(text)
            except ValueError:
                raw = b""
            if len(raw) != 8:
                raise EncodeError(self.id, "ID", f"not 8 hex bytes: {text!r}")
            table[i] = np.frombuffer(raw, dtype=np.uint8)
        return table[inverse.reshape(-1)]

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        internal = column_or_absent(decoded, "TempC_SHT")
        probe = column_or_absent(decoded, "TempC_DS")
        use_probe = ~internal.present & probe.present
        temperature = Column(np.where(use_probe, probe.values, internal.values), internal.present | use_probe)
        return {
            "temperature_c": temperature,
            "humidity_pct": column_or_absent(decoded, "Hum_SHT"),
            "battery_v": column_or_absent(decoded, "BatV"),
        }


# Ext mode -> field in b7.., width, range, scale
_EXT_VALUES = (
    (1, "TempC_DS", 2, -0x8000, 0x7FFF, 100),
    (5, "ILL_lx", 2, 0, 0xFFFF, 1),
    (6, "ADC_V", 2, 0, 0xFFFF, 1000),
    (7, "Exit_count", 2, 0, 0xFFFF, 1),
    (8, "Exit_count", 4, -(1 << 31), (1 << 31) - 1, 1),
    (9, "Systimestamp", 4, -(1 << 31), (1 << 31) - 1, 1),
)

codec_registry.register(DraginoLHT65())
