"""Bosch TPS110 parking lot sensor codec (decoder ``tpl110-0292``).

fPort 1 parking status, 2 heartbeat (temperature only when a second byte is sent), 3 startup, 4 device
information and 5 device usage (raw bytes), 6 debug; any other fPort decodes to ``{}``. A frame shorter than
the bytes its layout reads is rejected; extra bytes are ignored, as by the official decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import codec_registry
from .base import Codec, Column, Decoded, EncodeError, FieldSpec
from .encoding import le_bytes, to_ints
from .fill_level import column_or_absent
from .fixed_layout import OPTIONAL, Field, Flag, Group, Label, Layout, Length, Num, Port, Version, View
from .lazy_columns import Later

__all__ = ["BoschTPS110"]

_RESET_CAUSES = {1: "watchdog", 2: "power on", 3: "system request", 4: "other"}
_CODE_SLOTS = (0, 4, 8)  # offsets of the three debug-code blocks of a startup frame


def _code_lists(codes: np.ndarray) -> np.ndarray:
    """``debugCodes``: the non-zero codes of the three blocks of each row, as lists."""
    out = np.empty(len(codes), dtype=object)
    for i, row in enumerate(codes.tolist()):
        out[i] = [c for c in row if c]
    return out


@dataclass(frozen=True)
class _DebugCodes(Field):
    """The non-zero codes of the startup frame's three debug-code blocks (12 bits, little-endian), as a list;
    ``encode()`` takes up to three codes 1..4095 per row."""

    @property
    def extent(self) -> int:
        return _CODE_SLOTS[-1] + 2

    def read(self, view: View) -> Any:
        codes = np.stack([view.number(i, np.dtype("<u2")) & np.uint16(0x0FFF) for i in _CODE_SLOTS], axis=1)
        return Later(_code_lists, codes)

    def read_row(self, b: bytes) -> Any:
        codes = [((b[i + 1] & 0x0F) << 8) | b[i] for i in _CODE_SLOTS]
        return [c for c in codes if c]

    def write(self, codec_id: str, frames: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        for i, codes in zip(rows.tolist(), values, strict=True):
            codes = list(codes or ())
            if len(codes) > 3:
                raise EncodeError(codec_id, self.name, "at most three codes")
            code_bytes = le_bytes(to_ints(codec_id, self.name, np.array(codes, dtype=np.float64), 1, 0xFFF), 2)
            for slot, pair in zip(_CODE_SLOTS, code_bytes, strict=False):
                frames[i, slot : slot + 2] = pair


LAYOUT = Layout(
    ports=(
        Port(1, 1, type="parking status"),
        Port(2, 1, type="heartbeat"),
        Port(3, 17, type="startup"),
        Port(4, type="device information", raw=True),
        Port(5, type="device usage", raw=True),
        Port(6, 10, type="debug"),
    ),
    groups=(
        # status and heartbeat frames (nearly all traffic) are read over the whole batch
        Group((1, 2), (Flag("occupied", at=0),)),
        Group((2,), (Num("temperature", at=1, type="i1", when=(Length(2),)),)),
        Group(
            (3,),
            (
                _DebugCodes("debugCodes", default=OPTIONAL),
                Version("firmwareVersion", at=12),
                Label("resetCause", at=15, table=_RESET_CAUSES, default=None),
                Flag("occupied", at=16),
            ),
            sparse=True,
        ),
        Group(
            (6,),
            (
                Num("timestamp", at=0, type="<i4"),
                Num("debugCode", at=4, type="<u2", mask=0x0FFF, default=0),
                Num("sequenceNumber", at=8, type="<u2", default=0),
            ),
            sparse=True,
        ),
    ),
)


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
        return LAYOUT.decode(self.fields, f_port, buf, offsets)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        return LAYOUT.decode_row(self.fields, f_port, payload)

    def encode(self, f_port: int, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """fPort 1: ``occupied``; 2: ``occupied`` and optionally ``temperature``; 3: ``debugCodes`` (up to
        three codes 1..4095 per row), ``firmwareVersion``, ``resetCause`` (None: not named), ``occupied``;
        4 and 5: ``bytes``; 6: ``timestamp``, ``debugCode``, ``sequenceNumber``."""
        return LAYOUT.encode(self.id, f_port, columns)

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        return {
            "occupied": column_or_absent(decoded, "occupied", np.bool_),
            "temperature_c": column_or_absent(decoded, "temperature"),
        }


codec_registry.register(BoschTPS110())
