"""Nwave NPS405 parking sensor codec (Smart Parking Sensor G4 SM/FM).

fPort 1 parking status, 2 heartbeat, 3 startup, 6 debug dump, 10 user (SDI tag) registration; any other fPort
decodes to ``{}``. A frame shorter than the bytes its layout reads is rejected; extra bytes are ignored, as by
the official decoder. The previous state's duration is sent compressed in 7 bits (see ``_expand``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import codec_registry
from .arrays import Builder, format_unique, i32be, lut, pack, row_count, wrong_length
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .encoding import batch_size, be_bytes, dotted_bytes, field_values, pack_lists, to_codes, to_ints
from .fill_level import column_or_absent
from .lazy_columns import Later, Lookup
from .row_classes import PortCodes, fail_by_length, heads, payload_lists, peek

__all__ = ["NwaveNPS405"]

_MIN_LENGTH = {1: 1, 2: 3, 3: 5, 6: 0, 10: 5}
_TYPES = {1: "parking_status", 2: "heartbeat", 3: "startup", 6: "debug", 10: "user_registration"}
_RESET_CAUSES = {
    0: "rejoining_lorawan_network",
    1: "watchdog",
    2: "power_on",
    3: "user_request",
    6: "brownout",
    7: "other",
}


def _expand(c: int) -> tuple[int, int | None, bool]:
    """Compressed duration (0..127) -> (duration, error, overflow)."""
    if c < 90:
        return c, 0, False
    if c < 120:
        return 90 + (c - 90) * 5, 4, False
    if c < 127:
        return 240 + (c - 120) * 60, 59, False
    return 660, None, True


def _expand_all(c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_expand`` of every compressed duration (uint8 0..127): (duration int16, error uint8; 59 for the
    overflow code, whose error is null). Steps of 1, 5 and 60 minutes from 0, 90 and 120 on."""
    minutes = c.astype(np.int16)
    fives = minutes - 90
    np.maximum(fives, 0, out=fives)
    sixties = minutes - 120
    np.maximum(sixties, 0, out=sixties)
    minutes += fives * np.int16(4)
    minutes += sixties * np.int16(55)
    error = (c >= 90).view(np.uint8) * np.uint8(4) + (c >= 120).view(np.uint8) * np.uint8(55)
    return minutes, error


_RESET_LUT = lut([_RESET_CAUSES.get(i) for i in range(256)])
_RESET_KNOWN = np.array([i in _RESET_CAUSES for i in range(256)])
_HEALTH = lut(["normal", "low", "critical"], 3)
# fPort -> code: 0 any other fPort (decodes to {}), then the frame types in this order
_PORTS = PortCodes(_TYPES)
_STATUS, _HEARTBEAT, _STARTUP, _DEBUG, _REGISTRATION = 1, 2, 3, 4, 5
_CODE_TYPES = lut([None, *_TYPES.values()], len(_TYPES) + 1)
_CODE_NEED = np.array([0, *(_MIN_LENGTH[p] for p in _TYPES)])


def _compress(codec_id: str, minutes: np.ndarray) -> np.ndarray:
    """Duration -> compressed 7-bit value (rounding down to the step; 660 and more is the overflow code)."""
    d = to_ints(codec_id, "previous_state_duration", minutes, 0, 1 << 40)
    return np.select([d < 90, d < 240, d < 660], [d, 90 + (d - 90) // 5, 120 + (d - 240) // 60], 127)


def _too_short(port: int, length: int) -> str:
    return wrong_length(length, f"at least {_MIN_LENGTH[port]}")


def _dotted(k: int) -> str:
    return f"{k >> 16}.{k >> 8 & 255}.{k & 255}"


def _signed_hex(k: int) -> str:
    return f"{k:X}"


def _health(mv: np.ndarray, temperature: np.ndarray) -> np.ndarray:
    """Battery health code (0 normal, 1 low, 2 critical): thresholds 3000/2900 mV, 100 mV lower below -5 °C."""
    cold = np.where(temperature >= -5, 0, 100)
    return (mv < 3000 - cold).astype(np.uint8) + (mv < 2900 - cold)


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
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = np.asarray(buf, dtype=np.uint8)
        port = np.asarray(f_port, dtype=np.int64)
        whole = slice(None)
        out = Builder(row_count(offsets), self.fields)
        code = _PORTS(port)
        # Rows too short for their layout fail here; build() clears their columns.
        empty = (code == _STATUS) & (offsets[1:] == offsets[:-1])
        if empty.any():
            fail_by_length(out, np.flatnonzero(empty), port, offsets, _too_short)
        rest = np.flatnonzero(code > _STATUS)  # heartbeat, startup, debug and registration frames
        kind = code[rest]
        short = offsets[rest + 1] - offsets[rest] < np.take(_CODE_NEED, kind)
        if short.any():
            fail_by_length(out, rest[short], port, offsets, _too_short)
            rest, kind = rest[~short], kind[~short]
        out.set("type", whole, Lookup(_CODE_TYPES, code), where=code != 0)
        # Status frames (most traffic) are read straight from the buffer, and so are the fields that other
        # frames share with them: occupancy and duration in the first byte (registrations: null when the
        # byte says unoccupied), occupancy in the fifth byte of startup frames.
        b0 = peek(buf, offsets, 0)
        occupied = (b0 & 1).astype(bool)
        startup = rest[kind == _STARTUP]
        d = heads(buf, offsets[startup], 5)
        occupied[startup] = (d[:, 4] & 1).astype(bool)
        registration = code == _REGISTRATION
        unoccupied = registration & ~occupied
        out.set("occupied", whole, occupied, where=((code - np.uint8(1)) < 3) | registration, null=unoccupied)
        with_duration = (code == _STATUS) | registration
        if with_duration.any():
            c = b0 >> 1
            minutes, error = _expand_all(c)
            out.set("previous_state_duration", whole, minutes, where=with_duration, null=unoccupied)
            out.set("previous_state_duration_error", whole, error, where=with_duration, null=(c == 127) | unoccupied)
            out.set("previous_state_duration_overflow", whole, c == 127, where=with_duration, null=unoccupied)
        if len(startup):
            keys = (d[:, 0].astype(np.int64) << 16) | (d[:, 1].astype(np.int64) << 8) | d[:, 2]
            out.set("firmware_version", startup, Later(format_unique, keys, _dotted))
            cause = d[:, 3].copy()
            out.set("reset_cause", startup, Lookup(_RESET_LUT, cause), where=_RESET_KNOWN[cause])
        self._decode_rest(out, buf, offsets, rest, kind)
        return out.build()

    @staticmethod
    def _decode_rest(out: Builder, buf: np.ndarray, offsets: np.ndarray, rest: np.ndarray, kind: np.ndarray) -> None:
        """The fields of heartbeat, debug and registration frames that status frames do not have."""
        rows = rest[kind == _HEARTBEAT]
        if len(rows):
            d = heads(buf, offsets[rows], 3)
            mv = 2500 + 4 * d[:, 1].astype(np.int64)
            temperature = d[:, 2].view(np.int8) / 2 + 10
            out.set("hw_health_status", rows, d[:, 0] & 0x7F)
            out.set("battery_voltage", rows, mv / 1000)
            out.set("temperature", rows, temperature)
            out.set("battery_health", rows, Lookup(_HEALTH, _health(mv, temperature)))
        rows = rest[kind == _DEBUG]
        if len(rows):
            out.set("bytes", rows, payload_lists(buf, offsets, rows))
        rows = rest[kind == _REGISTRATION]
        if len(rows):
            d = heads(buf, offsets[rows], 5)
            out.set("tag_id", rows, Later(format_unique, i32be(d, 1), _signed_hex))

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        if f_port not in _MIN_LENGTH:
            return {}
        b = payload
        if len(b) < _MIN_LENGTH[f_port]:
            return {"errors": [wrong_length(len(b), f"at least {_MIN_LENGTH[f_port]}")]}
        obj: dict[str, Any] = {"type": _TYPES[f_port]}
        if f_port == 1:
            obj["occupied"] = b[0] & 1 == 1
            self._durations_row(obj, b[0])
        elif f_port == 2:
            obj["occupied"] = b[0] & 1 == 1
            obj["hw_health_status"] = b[0] & 0x7F
            mv = 2500 + 4 * b[1]
            obj["battery_voltage"] = mv / 1000
            temperature = (b[2] - 256 if b[2] > 127 else b[2]) / 2 + 10
            obj["temperature"] = temperature
            low, critical = (3000, 2900) if temperature >= -5 else (2900, 2800)
            obj["battery_health"] = "normal" if mv >= low else "low" if mv >= critical else "critical"
        elif f_port == 3:
            obj["firmware_version"] = f"{b[0]}.{b[1]}.{b[2]}"
            if b[3] in _RESET_CAUSES:
                obj["reset_cause"] = _RESET_CAUSES[b[3]]
            obj["occupied"] = b[4] & 1 == 1
        elif f_port == 6:
            obj["bytes"] = list(b)
        else:
            if b[0] & 1:
                obj["occupied"] = True
                self._durations_row(obj, b[0])
            else:
                for key in ("occupied", "previous_state_duration", "previous_state_duration_error"):
                    obj[key] = None
                obj["previous_state_duration_overflow"] = None
            obj["tag_id"] = f"{int.from_bytes(b[1:5], 'big', signed=True):X}"
        return obj

    @staticmethod
    def _durations_row(obj: dict[str, Any], b0: int) -> None:
        duration, error, overflow = _expand(b0 >> 1 & 0x7F)
        obj["previous_state_duration"] = duration
        obj["previous_state_duration_error"] = error
        obj["previous_state_duration_overflow"] = overflow

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 1: ``occupied``, ``previous_state_duration``; 2: ``occupied``, ``battery_voltage``,
        ``temperature`` (``hw_health_status`` optional); 3: ``firmware_version``, ``reset_cause``,
        ``occupied``; 6: ``bytes``; 10: ``occupied`` (True or None), ``previous_state_duration``,
        ``tag_id``."""
        n = batch_size(columns)
        if f_port == 6:
            return pack_lists(self.id, "bytes", field_values(self.id, columns, "bytes", n))
        if f_port not in _MIN_LENGTH:
            raise EncodeError(self.id, "f_port", f"unknown FPort {f_port}")
        occupied = np.equal(field_values(self.id, columns, "occupied", n, False), True)
        frames = np.zeros((n, {1: 1, 2: 6, 3: 5, 10: 5}[f_port]), dtype=np.uint8)
        if f_port in (1, 10):
            duration = field_values(self.id, columns, "previous_state_duration", n, 0)
            c = np.zeros(n, dtype=np.int64)
            c[occupied | (f_port == 1)] = _compress(self.id, duration[occupied | (f_port == 1)])
            frames[:, 0] = (c << 1) | occupied
        if f_port == 10:
            tags = field_values(self.id, columns, "tag_id", n)
            frames[:, 1:5] = be_bytes(self._tag_values(tags), 4)
        elif f_port == 2:
            if "hw_health_status" in columns:
                hw = field_values(self.id, columns, "hw_health_status", n)
                hw = to_ints(self.id, "hw_health_status", hw, 0, 127)
                if "occupied" not in columns:
                    occupied = (hw & 1).astype(bool)
                frames[:, 0] = (hw & 0x7E) | occupied
            else:
                frames[:, 0] = occupied
            volts = field_values(self.id, columns, "battery_voltage", n)
            frames[:, 1] = to_ints(self.id, "battery_voltage", (volts * 1000 - 2500) / 4, 0, 255)
            temperature = field_values(self.id, columns, "temperature", n, 20)
            frames[:, 2] = to_ints(self.id, "temperature", (temperature - 10) * 2, -128, 127) & 0xFF
        elif f_port == 3:
            version = field_values(self.id, columns, "firmware_version", n)
            frames[:, 0:3] = dotted_bytes(self.id, "firmware_version", version)
            causes = (
                field_values(self.id, columns, "reset_cause", n, "") if "reset_cause" in columns else np.full(n, None)
            )
            causes = causes.astype(object)
            missing = np.array([c is None for c in causes], dtype=bool)
            codes = {name: code for code, name in _RESET_CAUSES.items()}
            frames[~missing, 3] = to_codes(self.id, "reset_cause", causes[~missing].astype(str), codes)
            frames[missing, 3] = 4  # a reset cause the decoder does not name
            frames[:, 4] = occupied
        return pack([(np.arange(n), frames)], n)

    def _tag_values(self, tags: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(np.asarray(tags).astype(str), return_inverse=True)
        table = np.empty(len(uniq), dtype=np.int64)
        for i, text in enumerate(uniq.tolist()):
            try:
                v = int(text, 16)
            except ValueError:
                raise EncodeError(self.id, "tag_id", f"not a hex number: {text!r}") from None
            if not -(1 << 31) <= v < 1 << 31:
                raise EncodeError(self.id, "tag_id", f"outside signed 32 bits: {text!r}")
            table[i] = v
        return table[inverse.reshape(-1)]

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        return {
            "occupied": column_or_absent(decoded, "occupied", np.bool_),
            "battery_v": column_or_absent(decoded, "battery_voltage"),
            "temperature_c": column_or_absent(decoded, "temperature"),
        }


codec_registry.register(NwaveNPS405())
