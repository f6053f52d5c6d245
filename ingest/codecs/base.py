"""The codec contract: a device family's payload format as data plus pure batch functions.

A batch of payloads is three arrays: ``f_port`` (int, length n), ``buf`` (one flat ``uint8`` buffer holding every
payload back to back) and ``offsets`` (int64, length n + 1; payload i is ``buf[offsets[i]:offsets[i + 1]]``).
A codec decodes the whole batch with array operations and returns a :class:`Decoded`: one :class:`Column` per
output field (values plus a presence mask, because official decoders omit fields they did not see), an ``ok`` mask
and a per-row error reason for the rows that failed. Failing rows never raise.

Exceptions::

    CodecError               base class
     +-- UnknownCodec        codec_id not registered (attribute: codec_id)
     +-- EncodeError         encode() got values it cannot represent (attributes: codec_id, field)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

__all__ = ["QUANTITIES", "Codec", "CodecError", "Column", "Decoded", "EncodeError", "FieldSpec", "UnknownCodec"]

FieldKind = Literal["float", "int", "bool", "str", "bytes", "object"]

#: Domain quantities a codec's ``domain()`` may return, with their unit. The writer maps them to domain tables
#: by the device's site kind (bin -> bin_levels, parking space -> parking_events, vehicle -> passenger_counts,
#: environment station -> environment_readings).
QUANTITIES: dict[str, str] = {
    "distance_mm": "mm",  # sensor to surface
    "fill_pct": "%",  # bin fill level, 0..100
    "occupied": "bool",  # parking space occupied
    "pax_in": "passengers",  # boarded in the reporting period
    "pax_out": "passengers",  # alighted in the reporting period
    "pax_count": "people",  # people currently present (Wi-Fi/BLE counter)
    "temperature_c": "degC",
    "humidity_pct": "%RH",
    "co2_ppm": "ppm",
    "light_lux": "lx",
    "motion": "count",
    "battery_v": "V",
    "battery_pct": "%",
}


class CodecError(Exception):
    """Base class of codec errors."""


class UnknownCodec(CodecError):
    def __init__(self, codec_id: str) -> None:
        super().__init__(f"unknown codec {codec_id!r}")
        self.codec_id = codec_id


class EncodeError(CodecError):
    def __init__(self, codec_id: str, field: str, message: str) -> None:
        super().__init__(f"{codec_id}: cannot encode {field}: {message}")
        self.codec_id = codec_id
        self.field = field


@dataclass(frozen=True)
class FieldSpec:
    """One output field. ``name`` is the key in the official JSON object; nested keys are dotted
    (``line_1.total_in``)."""

    name: str
    kind: FieldKind
    unit: str = ""
    description: str = ""


@dataclass
class Column:
    """Values of one field for every row of a batch; ``present[i]`` is False where row i has no such key.

    ``null`` (optional bool mask) marks present rows whose value is JSON ``null`` (e.g. the NPS405's
    ``occupied`` in a registration without occupancy); ``values`` is then ignored for those rows."""

    values: np.ndarray
    present: np.ndarray
    null: np.ndarray | None = None


@dataclass
class Decoded:
    """The result of decoding a batch of n payloads.

    ``ok[i]`` is False for rows that failed; ``error[i]`` then holds the reason (the official decoder's error text
    where it has one, e.g. ``"unknown FPort"``), else None. ``columns`` maps field names to columns.
    ``raw`` holds codec-private arrays (e.g. a battery voltage that the official object writes as text) for
    ``domain()``; they are not part of the official object. Arrays may be read-only views (an ``error`` with no
    failure, a column no row has): copy before modifying.
    """

    n: int
    ok: np.ndarray
    error: np.ndarray
    columns: dict[str, Column] = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict)

    def objects(self) -> list[dict[str, Any] | None]:
        """One JSON-ready object per row, as the official decoder returns it; None for failed rows."""
        out: list[dict[str, Any] | None] = []
        names = list(self.columns)
        cols = [self.columns[n] for n in names]
        values = [c.values.tolist() if c.values.dtype != object else list(c.values) for c in cols]
        for vals, c in zip(values, cols, strict=True):
            if c.null is not None:
                for i in np.flatnonzero(c.null & c.present).tolist():
                    vals[i] = None
        presents = [c.present.tolist() for c in cols]
        ok = self.ok.tolist()
        for i in range(self.n):
            if not ok[i]:
                out.append(None)
                continue
            obj: dict[str, Any] = {}
            for name, vals, pres in zip(names, values, presents, strict=True):
                if pres[i]:
                    _put(obj, name, vals[i])
            out.append(obj)
        return out

    def kept_objects(self) -> tuple[list[Any], list[list[str] | None], int] | None:
        """Objects to keep with the raw uplinks, as ``(data, warnings, codec version)``: a script codec's output,
        which has no table of its own unless its readings map feeds one. None for the built-ins, whose objects
        can be rebuilt from the stored payload at any time."""
        return None


def _put(obj: dict[str, Any], dotted: str, value: Any) -> None:
    if "." not in dotted:
        obj[dotted] = value
        return
    head, rest = dotted.split(".", 1)
    _put(obj.setdefault(head, {}), rest, value)


class Codec:
    """Base class of a device family's codec. Subclasses set the class attributes and implement the methods.

    Built-in codecs register through :func:`ingest.codecs.codec_registry.register`, the same way a third-party codec
    would.
    """

    id: ClassVar[str]  # TTN Device Repository id, e.g. "netvox/r718x"
    f_ports: ClassVar[tuple[int, ...]]  # fPorts the device uses
    fields: ClassVar[tuple[FieldSpec, ...]]
    quantities: ClassVar[tuple[str, ...]]  # keys of QUANTITIES that domain() can return

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        """Decode a batch with array operations. Never raises on payload content."""
        raise NotImplementedError

    def decode_uplinks(
        self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray, recv_time: np.ndarray
    ) -> Decoded:
        """Decode a batch of uplinks received at ``recv_time`` (``datetime64``, one per row). Codecs whose output
        does not depend on the time (all built-ins) decode as :meth:`decode` does."""
        return self.decode(f_port, buf, offsets)

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        """Per-message reference decoder: the official object, or ``{"errors": [...]}``."""
        raise NotImplementedError

    def encode(self, f_port: int, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Encode n readings (field name -> array of n values) into real payload bytes: ``(buf, offsets)``."""
        raise NotImplementedError

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        """Map decoded columns to domain quantities (keys of QUANTITIES). ``params`` holds per-row device
        parameters such as ``depth_mm`` (bin: sensor to bottom) and ``full_mm`` (bin: sensor to full level)."""
        raise NotImplementedError
