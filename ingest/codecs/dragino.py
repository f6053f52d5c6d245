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
from .base import Codec, Column, Decoded, FieldSpec
from .encoding import field_values, to_codes, to_ints
from .fill_level import column_or_absent
from .fixed_layout import OPTIONAL, Field, Group, Hex, Label, Layout, Marker, Num, Port, is_, not_

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


def _mode(mode: int, *fields: Field) -> Group:
    """The fields of external sensor mode ``mode`` (``Ext``, b6 & 0x0F), read on their own rows."""
    return Group((2,), fields, when=(is_(6, mode, mask=0x0F),), sparse=True)


_NOT_TIMESTAMP = (not_(6, 9, mask=0x0F),)
_INTERNAL = (not_(6, 15, mask=0x0F),)
LAYOUT = Layout(
    ports=(Port(2, FRAME, exact=True, fail=((is_(6, 0x40, mask=0x40), POLL_REASON),)),),
    groups=(
        Group(
            (2,),
            (
                Num("BatV", at=0, type=">u2", mask=0x3FFF, div=1000, when=_NOT_TIMESTAMP),
                Num("Bat_status", at=0, mask=0xC0, shift=6, when=_NOT_TIMESTAMP, default=3),
                Num("TempC_SHT", at=2, type=">i2", div=100, when=_INTERNAL),
                Num("Hum_SHT", at=4, type=">u2", mask=0x0FFF, div=10, when=_INTERNAL),
                Marker("No_connect", at=6, mask=0x80, text="Sensor no connection", default=OPTIONAL),
                Label("Ext_sensor", at=6, mask=0x0F, table=_EXT_SENSOR, encoded=False),
                Label("Work_mode", at=6, mask=0x0F, table=_WORK_MODE, encoded=False),
                Num("TempC_DS", at=7, type=">i2", div=100, when=(is_(6, 1, mask=0x0F),)),
            ),
        ),
        _mode(
            4,
            Label("Exti_pin_level", at=7, nonzero=True, table={0: "Low", 1: "High"}),
            Label("Exti_status", at=8, nonzero=True, table={0: "False", 1: "True"}),
        ),
        _mode(5, Num("ILL_lx", at=7, type=">u2")),
        _mode(6, Num("ADC_V", at=7, type=">u2", div=1000)),
        _mode(7, Num("Exit_count", at=7, type=">u2")),
        _mode(8, Num("Exit_count", at=7, type=">i4")),
        _mode(
            9,
            Num("TempC_DS", at=0, type=">i2", div=100),
            Num("Bat_status", at=4, mask=0xC0, shift=6, default=3),
            Num("Systimestamp", at=7, type=">i4"),
        ),
        _mode(15, Hex("ID", at=(2, 3, 4, 5, 7, 8, 9, 10), sep=" ")),
    ),
    unknown_port="unknown FPort",
    width=FRAME,
)


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
        return LAYOUT.decode(self.fields, f_port, buf, offsets)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        return LAYOUT.decode_row(self.fields, f_port, payload)

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 2 frames. The external sensor mode comes from ``Ext_sensor`` or ``Work_mode`` per row (None
        or absent in both: a mode without external data); the other keys are those the mode decodes to."""

        def prepare(frames: np.ndarray, columns: Mapping[str, Any], n: int) -> None:
            frames[:, 6] = self._modes(columns, n)

        return LAYOUT.encode(self.id, f_port, columns, prepare)

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


codec_registry.register(DraginoLHT65())
