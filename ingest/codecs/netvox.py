"""Netvox R718X (ultrasonic distance / fill level) and R719A (parking space) codecs.

Both send 11-byte frames: fPort 6 reports (``b2 == 0`` a version report, else a status report) and fPort 7
configuration responses (``b0`` command, ``b1`` device type). Any other fPort is the error
``"unknown FPort"``.
Frames shorter than 11 bytes are rejected; bytes beyond the 11th are ignored, as by the official decoder.
Each model's frames are one :class:`~ingest.codecs.fixed_layout.Layout` (:func:`_layout`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from . import codec_registry
from .arrays import volt_lut
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .builder import Builder
from .encoding import to_ints
from .fill_level import column_or_absent, fill_pct
from .fixed_layout import Field, Group, Hex, Label, Layout, Num, Port, View, is_, not_
from .lazy_columns import Lookup

__all__ = ["NetvoxR718X", "NetvoxR719A"]

FRAME = 11
_VOLT = volt_lut()
_VOLT_NUM = (np.arange(256) & 0x7F) / 10  # the battery voltage as a number, low-battery flag or not
_MODEL_X = 0x34  # the R718X's device type: the only model with temperature and inclination


def _volt_row(b: int) -> float | str:
    if b & 0x80:
        x = b & 0x7F
        return f"{x // 10 if x % 10 == 0 else x / 10}(low battery)"
    return b / 10


@dataclass(frozen=True)
class _Volt(Num):
    """``Volt``: the battery byte as tenths of a volt, or ``"<V>(low battery)"`` text when bit 7 is set; the
    number also goes to ``raw["battery_v"]`` for ``domain()``."""

    def put(self, out: Builder, view: View, where: np.ndarray | None) -> None:
        battery = view.byte(self.at)
        low = battery >= 0x80
        if (low if where is None else low & where).any():
            out.set(self.name, view.rows, Lookup(_VOLT, battery.copy()), where=where)
            out.set_raw("battery_v", view.rows, np.take(_VOLT_NUM, battery))
        else:  # no low-battery text in this batch: a plain float column, also the raw battery voltage
            volts = battery / 10  # shared by both: nothing below writes to either
            out.set(self.name, view.rows, volts, where=where, dtype=np.float64)
            out.set_raw("battery_v", view.rows, volts)

    @cached_property
    def row_reader(self) -> Callable[[bytes], Any]:
        at = self.at
        return lambda b: _volt_row(b[at])

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        """Numbers, or ``"3.2(low battery)"`` texts."""
        if values.dtype.kind in "fiu":
            frames[rows, self.at] = to_ints(codec_id, self.name, values, 0, 127, 10)
            return
        text = values.astype(str)
        low = np.char.endswith(text, "(low battery)")
        number = np.char.replace(text, "(low battery)", "")
        try:
            volts = number.astype(np.float64)
        except ValueError:
            raise EncodeError(codec_id, self.name, "not a number or '<V>(low battery)'") from None
        frames[rows, self.at] = to_ints(codec_id, self.name, volts, 0, 127, 10) | np.where(low, 0x80, 0)


def _u16(name: str, at: int, *when: Any, div: int = 1) -> Num:
    return Num(name, at=at, type=">u2", div=div, when=when, default=0)


def _layout(
    devices: Mapping[int, str], commands: Mapping[int, str], status: tuple[Field, ...], config: tuple[Field, ...]
) -> Layout:
    """A model's frames: the device byte in all, version or status reports on fPort 6, the model's
    configuration responses (``Cmd`` then the fields of each command) on fPort 7."""
    return Layout(
        ports=(Port(6, FRAME), Port(7, FRAME)),
        groups=(
            Group((6, 7), (Label("Device", at=1, table=devices, default=next(iter(devices.values()))),)),
            Group((6,), (_Volt("Volt", at=3), *status), when=(not_(2, 0),)),
            Group(
                (6,),
                (
                    Num("SWver", at=3, div=10),
                    Num("HWver", at=4, default=0),
                    Hex("Datecode", at=(5, 6, 7, 8), default="00000000"),
                ),
                when=(is_(2, 0),),
                sparse=True,
            ),
            Group((7,), (Label("Cmd", at=0, table=commands), *config), sparse=True),
        ),
        unknown_port="unknown FPort",
        width=FRAME,
    )


_RESULT = {0: "Success", 1: "Failure"}
_READ = is_(0, 0x82)  # ReadConfigReportRsp
_RESULT_CMDS = (0x81, 0x83, 0x85, 0x8B)  # the R718X's responses with a result code


class _Netvox(Codec):
    """What the R718X and R719A share: the fPorts, the layout's use, the battery for ``domain()``."""

    f_ports: ClassVar[tuple[int, ...]] = (6, 7)
    devices: ClassVar[dict[int, str]]
    commands: ClassVar[dict[int, str]]
    layout: ClassVar[Layout]

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        return self.layout.decode(self.fields, f_port, buf, offsets)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        return self.layout.decode_row(self.fields, f_port, payload)

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 6: a version report when ``SWver`` is given, else a status report; fPort 7: the responses
        named per row by ``Cmd``. ``Device`` defaults to the family's first model."""

        def prepare(frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
            if f_port == 6:
                frames[:, 0] = 1
                frames[:, 2] = 0 if "SWver" in columns else 1  # a version report, else a status report

        return self.layout.encode(self.id, f_port, columns, prepare)

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
    layout = _layout(
        devices,
        commands,
        status=(
            Label("Status", at=4, nonzero=True, table={0: "OFF", 1: "ON"}, default="ON"),
            _u16("Distance", 5),
            Num("FillLevel", at=9, when=(is_(1, _MODEL_X),), default=0),
            Num("FillLevel", at=7, when=(not_(1, _MODEL_X),), default=0),
            Num("Temp", at=7, type=">i2", div=10, when=(is_(1, _MODEL_X),), default=0),
            Num("AngleOfInclination", at=10, when=(is_(1, _MODEL_X),), default=0),
        ),
        config=(
            Label(
                "Status", at=2, nonzero=True, table=_RESULT, when=(is_(0, 0x81, 0x83, 0x85, 0x8B),), default="Success"
            ),
            _u16("MinTime", 2, _READ),
            _u16("MaxTime", 4, _READ),
            Num("BatteryChange", at=6, div=10, when=(_READ,), default=0),
            _u16("DistanceChange", 7, _READ),
            _u16("TempChange", 9, _READ, is_(1, _MODEL_X), div=10),
            _u16("OnDistanceThreshold", 2, is_(0, 0x84)),
            _u16("FillMaxDistance", 2, is_(0, 0x86)),
            _u16("DeadZoneDistance", 2, is_(0, 0x8C)),
        ),
    )

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
    layout = _layout(
        devices,
        commands,
        status=(Num("CarOnOff", at=4, default=0),),
        config=(
            Label("Status", at=2, nonzero=True, table=_RESULT, when=(is_(0, 0x81),), default="Success"),
            _u16("MinTime", 2, _READ),
            _u16("MaxTime", 4, _READ),
            Num("BatteryChange", at=6, div=10, when=(_READ,), default=0),
        ),
    )

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        car = column_or_absent(decoded, "CarOnOff", np.int64)
        return {"occupied": Column(car.values != 0, car.present), "battery_v": self._battery(decoded)}


codec_registry.register(NetvoxR718X())
codec_registry.register(NetvoxR719A())
