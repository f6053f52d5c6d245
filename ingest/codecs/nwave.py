"""Nwave NPS405 parking sensor codec (Smart Parking Sensor G4 SM/FM).

fPort 1 parking status, 2 heartbeat, 3 startup, 6 debug dump, 10 user (SDI tag) registration; any other fPort
decodes to ``{}``. A frame shorter than the bytes its layout reads is rejected; extra bytes are ignored, as by
the official decoder. The previous state's duration is sent compressed in 7 bits (see ``_expand``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from . import codec_registry
from .arrays import format_unique, lut
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .fill_level import column_or_absent
from .fixed_layout import OPTIONAL, Cond, Field, Flag, Group, Label, Layout, Num, Port, Table, Version, View, is_
from .lazy_columns import Later, Lookup

__all__ = ["NwaveNPS405"]

_RESET_CAUSES = {
    0: "rejoining_lorawan_network",
    1: "watchdog",
    2: "power_on",
    3: "user_request",
    6: "brownout",
    7: "other",
}


def _expand(c: int) -> tuple[int, int | None, bool]:
    """Compressed duration (0..127) -> (duration, error, overflow): steps of 1, 5 and 60 minutes from 0, 90
    and 120 on; 127 is the overflow code (660 and more, error unknown)."""
    if c < 90:
        return c, 0, False
    if c < 120:
        return 90 + (c - 90) * 5, 4, False
    if c < 127:
        return 240 + (c - 120) * 60, 59, False
    return 660, None, True


_DURATIONS = [_expand(c) for c in range(128)]
_HEALTH = lut(["normal", "low", "critical"], 3)


@dataclass(frozen=True)
class _Health(Field):
    """``battery_health`` from the heartbeat's battery voltage and temperature fields: normal, low or critical
    at 3000/2900 mV, 100 mV lower below -5 °C. Derived: not an ``encode()`` input."""

    volts: Num = Num("battery_voltage")
    temperature: Num = Num("temperature")

    @property
    def extent(self) -> int:
        return max(self.volts.extent, self.temperature.extent)

    def read(self, view: View) -> Any:
        mv = np.rint(self.volts.read(view) * 1000)
        low = np.where(self.temperature.read(view) >= -5, 3000.0, 2900.0)  # (floats: compared without a cast)
        return Lookup(_HEALTH, (mv < low).view(np.uint8) + (mv < low - 100))

    def read_row(self, b: bytes) -> Any:
        mv = round(self.volts.read_row(b) * 1000)
        low, critical = (3000, 2900) if self.temperature.read_row(b) >= -5 else (2900, 2800)
        return "normal" if mv >= low else "low" if mv >= critical else "critical"


@dataclass(frozen=True)
class _TagId(Num):
    """The SDI tag id: a signed 32-bit big-endian number as upper-case hex (``"-1F"`` when negative)."""

    type: str = ">i4"

    def read(self, view: View) -> Any:
        return Later(format_unique, self._raw(view).astype(np.int64), _signed_hex)

    @cached_property
    def row_reader(self) -> Callable[[bytes], Any]:
        raw = self._raw_row
        return lambda b: _signed_hex(raw(b))

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        uniq, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)
        table = np.empty(len(uniq), dtype=np.int64)
        for i, text in enumerate(uniq.tolist()):
            try:
                v = int(text, 16)
            except ValueError:
                raise EncodeError(codec_id, self.name, f"not a hex number: {text!r}") from None
            if not -(1 << 31) <= v < 1 << 31:
                raise EncodeError(codec_id, self.name, f"outside signed 32 bits: {text!r}")
            table[i] = v
        super().write(codec_id, frames, rows, table[inverse.reshape(-1)])


def _signed_hex(k: int) -> str:
    return f"{k:X}"


_UNOCCUPIED = (is_(0, 0, mask=1),)
_BITS: dict[str, Any] = {"at": 0, "mask": 0xFE, "shift": 1}


def _durations(null_when: tuple[Cond, ...] = ()) -> tuple[Field, ...]:
    """The previous state's duration, compressed in bits 1..7 of the first byte; its error and overflow follow
    from it (not ``encode()`` inputs)."""
    minutes, errors, overflows = zip(*_DURATIONS, strict=True)
    derived: dict[str, Any] = {**_BITS, "null_when": null_when, "encoded": False}
    return (
        Table("previous_state_duration", values=minutes, kind="i2", **_BITS, null_when=null_when, default=0),
        Table("previous_state_duration_error", values=errors, kind="u1", **derived),
        Table("previous_state_duration_overflow", values=overflows, kind="?", **derived),
    )


_VOLTS = Num("battery_voltage", at=1, mul=4, add=2500, div=1000)
_TEMPERATURE = Num("temperature", at=2, type="i1", add=20, div=2, default=20)
LAYOUT = Layout(
    ports=(
        Port(1, 1, type="parking_status"),
        Port(2, 3, type="heartbeat", size=6),
        Port(3, 5, type="startup"),
        Port(6, type="debug", raw=True),
        Port(10, 5, type="user_registration"),
    ),
    groups=(
        # status frames (most traffic) and heartbeats are read over the whole batch
        Group((1, 2), (Flag("occupied", at=0, default=OPTIONAL),)),
        Group((1,), _durations()),
        Group(
            (2,),
            (
                Num("hw_health_status", at=0, mask=0x7F, default=OPTIONAL),
                _VOLTS,
                _TEMPERATURE,
                _Health("battery_health", volts=_VOLTS, temperature=_TEMPERATURE, encoded=False),
            ),
            sparse=True,
        ),
        Group(
            (3,),
            (
                Version("firmware_version", at=0),
                Label("reset_cause", at=3, table=_RESET_CAUSES, unnamed=4, default=None),
                Flag("occupied", at=4, default=OPTIONAL),
            ),
            sparse=True,
        ),
        # registrations' occupancy and duration sit where the status frames' do: read with them, over the
        # whole batch (null where unoccupied); only the tag is read on the registrations' own rows
        Group((10,), (Flag("occupied", at=0, false=None, default=OPTIONAL), *_durations(_UNOCCUPIED))),
        Group((10,), (_TagId("tag_id", at=1),), sparse=True),
    ),
)


class NwaveNPS405(Codec):
    id = "nwave/nps405"
    f_ports = (1, 2, 3, 6, 10)
    fields = (
        FieldSpec("type", "str", "", "frame type"),
        FieldSpec("occupied", "bool", "", "space occupied (null in a registration without occupancy)"),
        FieldSpec("previous_state_duration", "int", "min", "duration of the previous state"),
        FieldSpec("previous_state_duration_error", "int", "min", "uncertainty of the duration"),
        FieldSpec("previous_state_duration_overflow", "bool", "", "duration exceeded 660"),
        FieldSpec("hw_health_status", "int", "", "hardware health bits (bit 0 is the occupancy)"),
        FieldSpec("battery_voltage", "float", "V"),
        FieldSpec("temperature", "float", "degC"),
        FieldSpec("battery_health", "str", "", "normal, low or critical"),
        FieldSpec("firmware_version", "str"),
        FieldSpec("reset_cause", "str"),
        FieldSpec("bytes", "bytes", "", "debug dump as byte values"),
        FieldSpec("tag_id", "str", "", "SDI tag id, signed 32-bit, upper-case hex"),
    )
    quantities = ("occupied", "battery_v", "temperature_c")

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        return LAYOUT.decode(self.fields, f_port, buf, offsets)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        return LAYOUT.decode_row(self.fields, f_port, payload)

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 1: ``occupied``, ``previous_state_duration``; 2: ``occupied``, ``battery_voltage``,
        ``temperature`` (``hw_health_status`` optional); 3: ``firmware_version``, ``reset_cause``,
        ``occupied``; 6: ``bytes``; 10: ``occupied`` (True or None), ``previous_state_duration``,
        ``tag_id``."""
        return LAYOUT.encode(self.id, f_port, columns)

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        return {
            "occupied": column_or_absent(decoded, "occupied", np.bool_),
            "battery_v": column_or_absent(decoded, "battery_voltage"),
            "temperature_c": column_or_absent(decoded, "temperature"),
        }


codec_registry.register(NwaveNPS405())
