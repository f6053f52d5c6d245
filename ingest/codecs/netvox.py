"""Netvox R718X (ultrasonic distance / fill level) and R719A (parking space) codecs.

Both send 11-byte frames: fPort 6 reports (``b2 == 0`` a version report, else a status report) and fPort 7
configuration responses (``b0`` command, ``b1`` device type). Any other fPort is the error
``"unknown FPort"``.
Frames shorter than 11 bytes are rejected; bytes beyond the 11th are ignored, as by the official decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from . import codec_registry
from .arrays import Builder, Rows, field, hex_column, i16be, lut, pack, row_count, subset, u16be, volt_lut, wrong_length
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .encoding import batch_size, be_bytes, field_values, to_codes, to_ints
from .fill_level import column_or_absent, fill_pct
from .lazy_columns import Later, Lookup
from .row_classes import PortCodes, at_least, fail_by_length, frames, one_of

__all__ = ["NetvoxR718X", "NetvoxR719A"]

FRAME = 11
_VOLT = volt_lut()
_VOLT_NUM = (np.arange(256) & 0x7F) / 10  # the battery voltage as a number, low-battery flag or not
_STATUS_ONOFF = lut(["OFF", "ON"], 2)
_STATUS_RESULT = lut(["Success", "Failure"], 2)


_PORTS = PortCodes((6, 7))
_PORT6, _PORT7 = 1, 2


def _too_short(port: int, length: int) -> str:
    return wrong_length(length, str(FRAME))


def _volt_row(b: int) -> float | str:
    if b & 0x80:
        x = b & 0x7F
        return f"{x // 10 if x % 10 == 0 else x / 10}(low battery)"
    return b / 10


def _volt_bytes(codec_id: str, values: np.ndarray) -> np.ndarray:
    """``Volt`` values (numbers, or ``"3.2(low battery)"`` strings) to the battery byte."""
    if values.dtype.kind in "fiu":
        return to_ints(codec_id, "Volt", values, 0, 127, 10)
    text = values.astype(str)
    low = np.char.endswith(text, "(low battery)")
    number = np.char.replace(text, "(low battery)", "")
    try:
        volts = number.astype(np.float64)
    except ValueError:
        raise EncodeError(codec_id, "Volt", "not a number or '<V>(low battery)'") from None
    return to_ints(codec_id, "Volt", volts, 0, 127, 10) | np.where(low, 0x80, 0)


def _datecode_bytes(codec_id: str, values: np.ndarray) -> np.ndarray:
    uniq, inverse = np.unique(values.astype(str), return_inverse=True)
    table = np.zeros((len(uniq), 4), dtype=np.uint8)
    for i, text in enumerate(uniq.tolist()):
        if len(text) != 8 or text != text.lower():
            raise EncodeError(codec_id, "Datecode", f"not 8 lowercase hex digits: {text!r}")
        try:
            table[i] = np.frombuffer(bytes.fromhex(text), dtype=np.uint8)
        except ValueError:
            raise EncodeError(codec_id, "Datecode", f"not 8 lowercase hex digits: {text!r}") from None
    return table[inverse.reshape(-1)]


def _u16(codec_id: str, columns: Mapping[str, Any], name: str, n: int, rows: np.ndarray, scale: float = 1):
    values = field_values(codec_id, columns, name, n, 0)[rows]
    return be_bytes(to_ints(codec_id, name, values, 0, 0xFFFF, scale), 2)


class _Netvox(Codec):
    """What the R718X and R719A share: device names, version reports, the Volt rule, framing."""

    f_ports: ClassVar[tuple[int, ...]] = (6, 7)
    devices: ClassVar[dict[int, str]]
    commands: ClassVar[dict[int, str]]

    def __init__(self) -> None:
        self._device_lut = lut([self.devices.get(i) for i in range(256)])
        self._device_known = np.array([i in self.devices for i in range(256)])
        self._device_codes = {name: code for code, name in self.devices.items()}
        self._cmd_lut = lut([self.commands.get(i) for i in range(256)])
        self._cmd_known = np.array([i in self.commands for i in range(256)])
        self._cmd_codes = {name: code for code, name in self.commands.items()}

    # --- decoding ---------------------------------------------------------------------------------------

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = np.asarray(buf, dtype=np.uint8)
        port = np.asarray(f_port, dtype=np.int64)
        out = Builder(row_count(offsets), self.fields)
        code = _PORTS(port)
        out.fail(slice(None), "unknown FPort", where=code == 0)
        rows, d = frames(buf, offsets, FRAME)
        if isinstance(rows, np.ndarray):  # some rows shorter than a frame
            short = (code != 0) & ~at_least(offsets, FRAME)
            fail_by_length(out, np.flatnonzero(short), port, offsets, _too_short)
            code = code[rows]
        if len(d) == 0:
            return out.build()
        b1 = d[:, 1]
        out.set("Device", rows, Lookup(self._device_lut, b1.copy()), where=(code != 0) & self._known(b1))
        p6 = code == _PORT6
        version = p6 & (d[:, 2] == 0)
        status = p6 ^ version
        if status.any():
            battery = d[:, 3]
            if ((battery >= 0x80) & status).any():
                out.set("Volt", rows, Lookup(_VOLT, battery.copy()), where=status)
                out.set_raw("battery_v", rows, np.take(_VOLT_NUM, battery))
            else:  # no low-battery text in this batch: a plain float column, also the raw battery voltage
                volts = battery / 10  # shared by both: nothing below writes to either
                out.set("Volt", rows, volts, where=status, dtype=np.float64)
                out.set_raw("battery_v", rows, volts)
            self._status(out, rows, d, status)
        if version.any():
            sub_rows, v = subset(rows, d, version)
            out.set("SWver", sub_rows, v[:, 3] / 10)
            out.set("HWver", sub_rows, v[:, 4].astype(np.int64))
            out.set("Datecode", sub_rows, Later(hex_column, v[:, 5:9]))
        p7 = code == _PORT7
        if p7.any():
            self._config(out, *subset(rows, d, p7))
        return out.build()

    def _known(self, device: np.ndarray) -> np.ndarray:
        return one_of(device, self.devices, self._device_known)

    def _status(self, out: Builder, rows: Rows, d: np.ndarray, where: np.ndarray) -> None:
        raise NotImplementedError

    def _config(self, out: Builder, rows: Rows, d: np.ndarray) -> None:
        raise NotImplementedError

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        if f_port not in self.f_ports:
            return {"errors": ["unknown FPort"]}
        if len(payload) < FRAME:
            return {"errors": [wrong_length(len(payload), str(FRAME))]}
        b = payload
        obj: dict[str, Any] = {}
        device = self.devices.get(b[1])
        if device is not None:
            obj["Device"] = device
        if f_port == 7:
            self._config_row(obj, b)
        elif b[2] == 0:
            obj["SWver"] = b[3] / 10
            obj["HWver"] = b[4]
            obj["Datecode"] = "".join(f"{x:02x}" for x in b[5:9])
        else:
            obj["Volt"] = _volt_row(b[3])
            self._status_row(obj, b)
        return obj

    def _status_row(self, obj: dict[str, Any], b: bytes) -> None:
        raise NotImplementedError

    def _config_row(self, obj: dict[str, Any], b: bytes) -> None:
        raise NotImplementedError

    # --- encoding ---------------------------------------------------------------------------------------

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 6: a version report when ``SWver`` is given, else a status report; fPort 7: the responses
        named per row by ``Cmd``. ``Device`` defaults to the family's first model."""
        n = batch_size(columns)
        frames = np.zeros((n, FRAME), dtype=np.uint8)
        device = field_values(self.id, columns, "Device", n, next(iter(self.devices.values())))
        frames[:, 1] = to_codes(self.id, "Device", device, self._device_codes)
        if f_port == 6 and "SWver" in columns:
            frames[:, 0] = 1
            frames[:, 3] = to_ints(self.id, "SWver", field_values(self.id, columns, "SWver", n), 0, 255, 10)
            frames[:, 4] = to_ints(self.id, "HWver", field_values(self.id, columns, "HWver", n, 0), 0, 255)
            frames[:, 5:9] = _datecode_bytes(self.id, field_values(self.id, columns, "Datecode", n, "00000000"))
        elif f_port == 6:
            frames[:, 0] = 1
            frames[:, 2] = 1
            frames[:, 3] = _volt_bytes(self.id, field_values(self.id, columns, "Volt", n))
            self._encode_status(frames, columns, n)
        elif f_port == 7:
            frames[:, 0] = to_codes(self.id, "Cmd", field_values(self.id, columns, "Cmd", n), self._cmd_codes)
            self._encode_config(frames, columns, n)
        else:
            raise EncodeError(self.id, "f_port", f"unknown FPort {f_port}")
        return pack([(np.arange(n), frames)], n)

    def _encode_status(self, frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
        raise NotImplementedError

    def _encode_config(self, frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
        raise NotImplementedError

    def _result_byte(self, frames: np.ndarray, columns: Mapping[str, Any], n: int, rows: np.ndarray) -> None:
        status = field_values(self.id, columns, "Status", n, "Success")[rows]
        frames[rows, 2] = to_codes(self.id, "Status", status, {"Success": 0, "Failure": 1})

    # --- domain -----------------------------------------------------------------------------------------

    def _battery(self, decoded: Decoded) -> Column:
        present = decoded.columns["Volt"].present & decoded.ok
        volts = decoded.raw.get("battery_v", np.zeros(decoded.n))
        return Column(np.where(present, volts, 0.0), present)


class NetvoxR718X(_Netvox):
    """Netvox R718X ultrasonic distance sensor with fill level (and the R718PE, which shares the decoder)."""

    id = "netvox/r718x"
    devices: ClassVar[dict[int, str]] = {0x34: "R718X", 0xB1: "R718PE"}
    commands: ClassVar[dict[int, str]] = {
        0x01: "ConfigReportReq",
        0x81: "ConfigReportRsp",
        0x02: "ReadConfigReportReq",
        0x82: "ReadConfigReportRsp",
        0x03: "SetOnDistanceThresholdReq",
        0x83: "SetOnDistanceThresholdRsp",
        0x04: "GetOnDistanceThresholdReq",
        0x84: "GetOnDistanceThresholdRsp",
        0x05: "SetFillMaxDistanceReq",
        0x85: "SetFillMaxDistanceRsp",
        0x06: "GetFillMaxDistanceReq",
        0x86: "GetFillMaxDistanceRsp",
        0x0B: "SetDeadZoneDistanceReq",
        0x8B: "SetDeadZoneDistanceRsp",
        0x0C: "GetDeadZoneDistanceReq",
        0x8C: "GetDeadZoneDistanceRsp",
    }
    fields = (
        FieldSpec("Device", "str", "", "model name from the device type byte"),
        FieldSpec("SWver", "float", "", "firmware version"),
        FieldSpec("HWver", "int", "", "hardware version"),
        FieldSpec("Datecode", "str", "", "BCD build date, e.g. 20200811"),
        FieldSpec("Volt", "object", "V", "battery voltage, or '<V>(low battery)' text"),
        FieldSpec("Status", "str", "", "ON/OFF in reports, Success/Failure in responses"),
        FieldSpec("Distance", "int", "mm", "sensor to surface"),
        FieldSpec("Temp", "float", "degC"),
        FieldSpec("FillLevel", "int", "%", "fill level computed by the device"),
        FieldSpec("AngleOfInclination", "int", "deg"),
        FieldSpec("Cmd", "str", "", "configuration command name"),
        FieldSpec("MinTime", "int", "s"),
        FieldSpec("MaxTime", "int", "s"),
        FieldSpec("BatteryChange", "float", "V"),
        FieldSpec("DistanceChange", "int", "mm"),
        FieldSpec("TempChange", "float", "degC"),
        FieldSpec("OnDistanceThreshold", "int", "mm"),
        FieldSpec("FillMaxDistance", "int", "mm"),
        FieldSpec("DeadZoneDistance", "int", "mm"),
    )
    quantities = ("distance_mm", "fill_pct", "temperature_c", "battery_v")
    _RESULT_CMDS = (0x81, 0x83, 0x85, 0x8B)
    _VALUE_CMDS = {0x84: "OnDistanceThreshold", 0x86: "FillMaxDistance", 0x8C: "DeadZoneDistance"}

    def _status(self, out: Builder, rows: Rows, d: np.ndarray, where: np.ndarray) -> None:
        is_x = d[:, 1] == 0x34
        out.set("Status", rows, Lookup(_STATUS_ONOFF, (d[:, 4] != 0).view(np.uint8)), where=where)
        out.set("Distance", rows, field(d, 5, ">u2").astype(np.uint16), where=where)
        out.set("FillLevel", rows, np.where(is_x, d[:, 9], d[:, 7]), where=where)
        with_temp = where & is_x
        out.set("Temp", rows, i16be(d, 7) / 10, where=with_temp)
        out.set("AngleOfInclination", rows, d[:, 10].copy(), where=with_temp)

    def _config(self, out: Builder, rows: Rows, d: np.ndarray) -> None:
        b0 = d[:, 0]
        out.set("Cmd", rows, Lookup(self._cmd_lut, b0.copy()), where=self._cmd_known[b0])
        result = np.take(_R718X_RESULT, b0)
        out.set("Status", rows, Lookup(_STATUS_RESULT, (d[:, 2] != 0).view(np.uint8)), where=result)
        read = b0 == 0x82
        out.set("MinTime", rows, u16be(d, 2), where=read)
        out.set("MaxTime", rows, u16be(d, 4), where=read)
        out.set("BatteryChange", rows, d[:, 6] / 10, where=read)
        out.set("DistanceChange", rows, u16be(d, 7), where=read)
        out.set("TempChange", rows, u16be(d, 9) / 10, where=read & (d[:, 1] == 0x34))
        for code, name in self._VALUE_CMDS.items():
            out.set(name, rows, u16be(d, 2), where=b0 == code)

    def _status_row(self, obj: dict[str, Any], b: bytes) -> None:
        obj["Status"] = "OFF" if b[4] == 0 else "ON"
        obj["Distance"] = b[5] << 8 | b[6]
        if b[1] == 0x34:
            obj["FillLevel"] = b[9]
            obj["Temp"] = int.from_bytes(b[7:9], "big", signed=True) / 10
            obj["AngleOfInclination"] = b[10]
        else:
            obj["FillLevel"] = b[7]

    def _config_row(self, obj: dict[str, Any], b: bytes) -> None:
        cmd = self.commands.get(b[0])
        if cmd is not None:
            obj["Cmd"] = cmd
        if b[0] in self._RESULT_CMDS:
            obj["Status"] = "Success" if b[2] == 0 else "Failure"
        elif b[0] == 0x82:
            obj["MinTime"] = b[2] << 8 | b[3]
            obj["MaxTime"] = b[4] << 8 | b[5]
            obj["BatteryChange"] = b[6] / 10
            obj["DistanceChange"] = b[7] << 8 | b[8]
            if b[1] == 0x34:
                obj["TempChange"] = (b[9] << 8 | b[10]) / 10
        elif b[0] in self._VALUE_CMDS:
            obj[self._VALUE_CMDS[b[0]]] = b[2] << 8 | b[3]

    def _encode_status(self, frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
        status = field_values(self.id, columns, "Status", n, "ON")
        frames[:, 4] = to_codes(self.id, "Status", status, {"OFF": 0, "ON": 1})
        frames[:, 5:7] = _u16(self.id, columns, "Distance", n, np.arange(n))
        fill = to_ints(self.id, "FillLevel", field_values(self.id, columns, "FillLevel", n, 0), 0, 255)
        is_x = frames[:, 1] == 0x34
        temp = field_values(self.id, columns, "Temp", n, 0)[is_x]
        frames[is_x, 7:9] = be_bytes(to_ints(self.id, "Temp", temp, -0x8000, 0x7FFF, 10), 2)
        angle = field_values(self.id, columns, "AngleOfInclination", n, 0)[is_x]
        frames[is_x, 10] = to_ints(self.id, "AngleOfInclination", angle, 0, 255)
        frames[is_x, 9] = fill[is_x]
        frames[~is_x, 7] = fill[~is_x]

    def _encode_config(self, frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
        b0 = frames[:, 0]
        self._result_byte(frames, columns, n, np.flatnonzero(np.isin(b0, self._RESULT_CMDS)))
        read = np.flatnonzero(b0 == 0x82)
        if read.size:
            frames[read, 2:4] = _u16(self.id, columns, "MinTime", n, read)
            frames[read, 4:6] = _u16(self.id, columns, "MaxTime", n, read)
            change = field_values(self.id, columns, "BatteryChange", n, 0)[read]
            frames[read, 6] = to_ints(self.id, "BatteryChange", change, 0, 255, 10)
            frames[read, 7:9] = _u16(self.id, columns, "DistanceChange", n, read)
            with_temp = read[frames[read, 1] == 0x34]
            frames[with_temp, 9:11] = _u16(self.id, columns, "TempChange", n, with_temp, 10)
        for code, name in self._VALUE_CMDS.items():
            rows = np.flatnonzero(b0 == code)
            if rows.size:
                frames[rows, 2:4] = _u16(self.id, columns, name, n, rows)

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        distance = column_or_absent(decoded, "Distance")
        fill = fill_pct(distance, params)
        device_fill = column_or_absent(decoded, "FillLevel")
        use_device = ~fill.present & device_fill.present
        fill = Column(np.where(use_device, device_fill.values, fill.values), fill.present | use_device)
        return {
            "distance_mm": distance,
            "fill_pct": fill,
            "temperature_c": column_or_absent(decoded, "Temp"),
            "battery_v": self._battery(decoded),
        }


_R718X_RESULT = np.array([i in NetvoxR718X._RESULT_CMDS for i in range(256)])


class NetvoxR719A(_Netvox):
    """Netvox R719A surface-mounted parking sensor (and the R719B)."""

    id = "netvox/r719a"
    devices: ClassVar[dict[int, str]] = {0x59: "R719A", 0xAF: "R719B"}
    commands: ClassVar[dict[int, str]] = {0x81: "ConfigReportRsp", 0x82: "ReadConfigReportRsp"}
    fields = (
        FieldSpec("Device", "str", "", "model name from the device type byte"),
        FieldSpec("SWver", "float", "", "firmware version"),
        FieldSpec("HWver", "int", "", "hardware version"),
        FieldSpec("Datecode", "str", "", "BCD build date, e.g. 20200424"),
        FieldSpec("Volt", "object", "V", "battery voltage, or '<V>(low battery)' text"),
        FieldSpec("CarOnOff", "int", "", "1 = vehicle present, 0 = free"),
        FieldSpec("Cmd", "str", "", "configuration command name"),
        FieldSpec("Status", "str", "", "Success/Failure"),
        FieldSpec("MinTime", "int", "s"),
        FieldSpec("MaxTime", "int", "s"),
        FieldSpec("BatteryChange", "float", "V"),
    )
    quantities = ("occupied", "battery_v")

    def _status(self, out: Builder, rows: Rows, d: np.ndarray, where: np.ndarray) -> None:
        out.set("CarOnOff", rows, d[:, 4].copy(), where=where)

    def _config(self, out: Builder, rows: Rows, d: np.ndarray) -> None:
        b0 = d[:, 0]
        out.set("Cmd", rows, Lookup(self._cmd_lut, b0.copy()), where=self._cmd_known[b0])
        out.set("Status", rows, Lookup(_STATUS_RESULT, (d[:, 2] != 0).view(np.uint8)), where=b0 == 0x81)
        read = b0 == 0x82
        out.set("MinTime", rows, u16be(d, 2), where=read)
        out.set("MaxTime", rows, u16be(d, 4), where=read)
        out.set("BatteryChange", rows, d[:, 6] / 10, where=read)

    def _status_row(self, obj: dict[str, Any], b: bytes) -> None:
        obj["CarOnOff"] = b[4]

    def _config_row(self, obj: dict[str, Any], b: bytes) -> None:
        if b[0] == 0x81:
            obj["Cmd"] = "ConfigReportRsp"
            obj["Status"] = "Success" if b[2] == 0 else "Failure"
        elif b[0] == 0x82:
            obj["Cmd"] = "ReadConfigReportRsp"
            obj["MinTime"] = b[2] << 8 | b[3]
            obj["MaxTime"] = b[4] << 8 | b[5]
            obj["BatteryChange"] = b[6] / 10

    def _encode_status(self, frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
        car = field_values(self.id, columns, "CarOnOff", n, 0)
        frames[:, 4] = to_ints(self.id, "CarOnOff", car, 0, 255)

    def _encode_config(self, frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
        b0 = frames[:, 0]
        self._result_byte(frames, columns, n, np.flatnonzero(b0 == 0x81))
        read = np.flatnonzero(b0 == 0x82)
        if read.size:
            frames[read, 2:4] = _u16(self.id, columns, "MinTime", n, read)
            frames[read, 4:6] = _u16(self.id, columns, "MaxTime", n, read)
            change = field_values(self.id, columns, "BatteryChange", n, 0)[read]
            frames[read, 6] = to_ints(self.id, "BatteryChange", change, 0, 255, 10)

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        car = column_or_absent(decoded, "CarOnOff", np.int64)
        return {"occupied": Column(car.values != 0, car.present), "battery_v": self._battery(decoded)}


codec_registry.register(NetvoxR718X())
codec_registry.register(NetvoxR719A())
