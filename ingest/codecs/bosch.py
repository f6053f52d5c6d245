"""Bosch TPS110 parking lot sensor codec (decoder ``tpl110-0292``).

fPort 1 parking status, 2 heartbeat (temperature only when a second byte is sent), 3 startup, 4 device
information and 5 device usage (raw bytes), 6 debug; any other fPort decodes to ``{}``. A frame shorter than
the bytes its layout reads is rejected; extra bytes are ignored, as by the official decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import codec_registry
from .arrays import Builder, format_unique, i32le, lut, pack, row_count, u16le, wrong_length
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .encoding import batch_size, dotted_bytes, field_values, le_bytes, pack_lists, to_codes, to_ints
from .fill_level import column_or_absent
from .lazy_columns import Later, Lookup
from .row_classes import PortCodes, fail_by_length, heads, length_masks, payload_lists, peek

__all__ = ["BoschTPS110"]

_MIN_LENGTH = {1: 1, 2: 1, 3: 17, 4: 0, 5: 0, 6: 10}
_TYPES = {
    1: "parking status",
    2: "heartbeat",
    3: "startup",
    4: "device information",
    5: "device usage",
    6: "debug",
}
_RESET_CAUSES = {1: "watchdog", 2: "power on", 3: "system request", 4: "other"}
_RESET_LUT = lut([_RESET_CAUSES.get(i) for i in range(256)])
_RESET_KNOWN = np.array([i in _RESET_CAUSES for i in range(256)])
_CODE_SLOTS = (0, 4, 8)  # offsets of the three debug-code blocks of a startup frame
# fPort 6 fields: name, first byte, width, largest value (0: signed 32-bit, required)
_DEBUG_FIELDS = (
    ("timestamp", 0, 4, 0),
    ("debugCode", 4, 2, 0xFFF),
    ("sequenceNumber", 8, 2, 0xFFFF),
)


def _dotted(k: int) -> str:
    return f"{k >> 16}.{k >> 8 & 255}.{k & 255}"


def _code_lists(codes: np.ndarray) -> np.ndarray:
    """``debugCodes``: the non-zero codes of the three blocks of each row, as lists."""
    out = np.empty(len(codes), dtype=object)
    for i, row in enumerate(codes.tolist()):
        out[i] = [c for c in row if c]
    return out


def _too_short(port: int, length: int) -> str:
    return wrong_length(length, f"at least {_MIN_LENGTH[port]}")


_PORTS = PortCodes(range(1, 7))  # code = fPort for 1..6, 0 for any other fPort
_CODE_TYPES = lut([None, *(_TYPES[p] for p in range(1, 7))], 7)
_CODE_NEED = np.array([0, *(_MIN_LENGTH[p] for p in range(1, 7))])


class BoschTPS110(Codec):
    id = "bosch/tps110"
    f_ports = (1, 2, 3, 4, 5, 6)
    fields = (
        FieldSpec("type", "str", "", "frame type"),
        FieldSpec("occupied", "bool", "", "space occupied"),
        FieldSpec("temperature", "int", "degC"),
        FieldSpec("debugCodes", "object", "", "non-zero debug codes of the startup frame"),
        FieldSpec("firmwareVersion", "str"),
        FieldSpec("resetCause", "str"),
        FieldSpec("bytes", "bytes", "", "raw frame as byte values"),
        FieldSpec("timestamp", "int", "s", "device time of the debug record"),
        FieldSpec("debugCode", "int"),
        FieldSpec("sequenceNumber", "int"),
    )
    quantities = ("occupied", "temperature_c")

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = np.asarray(buf, dtype=np.uint8)
        port = np.asarray(f_port, dtype=np.int64)
        whole = slice(None)
        out = Builder(row_count(offsets), self.fields)
        code = _PORTS(port)
        some, two = length_masks(offsets, (1, 2))
        # Rows too short for their layout fail here; build() clears their columns.
        status = (code - np.uint8(1)) < 2  # status and heartbeat frames: one byte at least
        empty = status & ~some
        if empty.any():
            fail_by_length(out, np.flatnonzero(empty), port, offsets, _too_short)
        rare = np.flatnonzero(code > 2)  # startup, device information/usage and debug frames
        kind, starts = code[rare], offsets[rare]
        short = offsets[rare + 1] - starts < np.take(_CODE_NEED, kind)
        if short.any():
            fail_by_length(out, rare[short], port, offsets, _too_short)
            rare, kind, starts = rare[~short], kind[~short], starts[~short]
        out.set("type", whole, Lookup(_CODE_TYPES, code), where=code != 0)
        # Status and heartbeat frames (nearly all traffic) are read straight from the buffer; the occupancy
        # of startup frames (in their 17th byte) joins that column.
        occupied = (peek(buf, offsets, 0) & 1).astype(bool)
        is_startup = kind == 3
        startup = heads(buf, starts[is_startup], _MIN_LENGTH[3])
        occupied[rare[is_startup]] = (startup[:, 16] & 1).astype(bool)
        out.set("occupied", whole, occupied, where=(code - np.uint8(1)) < 3)
        warm = (code == 2) & two
        if warm.any():
            out.set("temperature", whole, peek(buf, offsets, 1).view(np.int8), where=warm)
        self._decode_rare(out, buf, offsets, rare, kind, starts, startup)
        return out.build()

    @staticmethod
    def _decode_rare(
        out: Builder,
        buf: np.ndarray,
        offsets: np.ndarray,
        rare: np.ndarray,
        kind: np.ndarray,
        starts: np.ndarray,
        startup: np.ndarray,
    ) -> None:
        """The other fields of startup frames (``startup``: their first 17 bytes), device information/usage
        and debug frames; ``starts``: where the ``rare`` rows' payloads start."""
        rows = rare[kind == 3]
        if len(rows):
            codes = np.stack([((startup[:, i + 1] & 0x0F).astype(np.int64) << 8) | startup[:, i] for i in _CODE_SLOTS])
            out.set("debugCodes", rows, Later(_code_lists, codes.T))
            version = (startup[:, 12].astype(np.int64) << 16) | (startup[:, 13].astype(np.int64) << 8) | startup[:, 14]
            out.set("firmwareVersion", rows, Later(format_unique, version, _dotted))
            cause = startup[:, 15].copy()
            out.set("resetCause", rows, Lookup(_RESET_LUT, cause), where=_RESET_KNOWN[cause])
        rows = rare[(kind == 4) | (kind == 5)]
        if len(rows):
            out.set("bytes", rows, payload_lists(buf, offsets, rows))
        debug = kind == 6
        rows = rare[debug]
        if len(rows):
            d = heads(buf, starts[debug], _MIN_LENGTH[6])
            out.set("timestamp", rows, i32le(d, 0))
            out.set("debugCode", rows, ((d[:, 5] & 0x0F).astype(np.int64) << 8) | d[:, 4])
            out.set("sequenceNumber", rows, u16le(d, 8))

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        if f_port not in _MIN_LENGTH:
            return {}
        b = payload
        if len(b) < _MIN_LENGTH[f_port]:
            return {"errors": [wrong_length(len(b), f"at least {_MIN_LENGTH[f_port]}")]}
        obj: dict[str, Any] = {"type": _TYPES[f_port]}
        if f_port in (1, 2):
            obj["occupied"] = b[0] & 1 == 1
            if f_port == 2 and len(b) >= 2:
                obj["temperature"] = b[1] - 256 if b[1] & 0x80 else b[1]
        elif f_port == 3:
            codes = [((b[i + 1] & 0x0F) << 8) | b[i] for i in _CODE_SLOTS]
            obj["debugCodes"] = [c for c in codes if c]
            obj["firmwareVersion"] = f"{b[12]}.{b[13]}.{b[14]}"
            if b[15] in _RESET_CAUSES:
                obj["resetCause"] = _RESET_CAUSES[b[15]]
            obj["occupied"] = b[16] & 1 == 1
        elif f_port in (4, 5):
            obj["bytes"] = list(b)
        else:
            obj["timestamp"] = int.from_bytes(b[0:4], "little", signed=True)
            obj["debugCode"] = ((b[5] & 0x0F) << 8) | b[4]
            obj["sequenceNumber"] = b[8] | b[9] << 8
        return obj

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 1: ``occupied``; 2: ``occupied`` and optionally ``temperature``; 3: ``debugCodes`` (up to
        three codes 1..4095 per row), ``firmwareVersion``, ``resetCause`` (None: not named), ``occupied``;
        4 and 5: ``bytes``; 6: ``timestamp``, ``debugCode``, ``sequenceNumber``."""
        n = batch_size(columns)
        if f_port in (4, 5):
            return pack_lists(self.id, "bytes", field_values(self.id, columns, "bytes", n))
        if f_port not in _MIN_LENGTH:
            raise EncodeError(self.id, "f_port", f"unknown FPort {f_port}")
        width = {1: 1, 2: 2 if "temperature" in columns else 1, 3: 17, 6: 10}[f_port]
        frames = np.zeros((n, width), dtype=np.uint8)
        if f_port in (1, 2):
            frames[:, 0] = np.equal(field_values(self.id, columns, "occupied", n), True)
            if width == 2:
                temperature = field_values(self.id, columns, "temperature", n)
                frames[:, 1] = to_ints(self.id, "temperature", temperature, -128, 127) & 0xFF
        elif f_port == 3:
            self._encode_codes(frames, field_values(self.id, columns, "debugCodes", n, ()))
            version = field_values(self.id, columns, "firmwareVersion", n)
            frames[:, 12:15] = dotted_bytes(self.id, "firmwareVersion", version)
            causes = (
                field_values(self.id, columns, "resetCause", n, "") if "resetCause" in columns else np.full(n, None)
            )
            causes = causes.astype(object)
            missing = np.array([c is None for c in causes], dtype=bool)
            codes = {name: code for code, name in _RESET_CAUSES.items()}
            frames[~missing, 15] = to_codes(self.id, "resetCause", causes[~missing].astype(str), codes)
            frames[:, 16] = np.equal(field_values(self.id, columns, "occupied", n), True)
        else:
            for name, start, width, hi in _DEBUG_FIELDS:
                lo, hi = (-(1 << 31), (1 << 31) - 1) if hi == 0 else (0, hi)
                given = field_values(self.id, columns, name, n, None if name == "timestamp" else 0)
                values = to_ints(self.id, name, given, lo, hi)
                frames[:, start : start + width] = le_bytes(values, width)
        return pack([(np.arange(n), frames)], n)

    def _encode_codes(self, frames: np.ndarray, lists: np.ndarray) -> None:
        for i, codes in enumerate(lists):
            codes = list(codes or ())
            if len(codes) > 3:
                raise EncodeError(self.id, "debugCodes", "at most three codes")
            code_bytes = le_bytes(to_ints(self.id, "debugCodes", np.array(codes, dtype=np.float64), 1, 0xFFF), 2)
            for slot, pair in zip(_CODE_SLOTS, code_bytes, strict=False):
                frames[i, slot : slot + 2] = pair

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        return {
            "occupied": column_or_absent(decoded, "occupied", np.bool_),
            "temperature_c": column_or_absent(decoded, "temperature"),
        }


codec_registry.register(BoschTPS110())
