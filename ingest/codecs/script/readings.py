"""A script codec's readings map: which decoded fields feed the hub's quantities, and how.

A script returns whatever object its vendor chose; the map names, per hub quantity (a key of
:data:`~ingest.codecs.base.QUANTITIES`), the decoded field it comes from (dotted for nested objects), a scale to
the hub's unit and, for fields that are text, the value each text stands for::

    distance_mm: {field: distance_cm, scale: 10}
    battery_v: {field: battery_mv, scale: 0.001}
    occupied: {field: state, values: {occupied: true, free: false}}
    pax_in: people.in            # a field name alone: scale 1

Numbers and booleans are read as numbers (``true`` is 1); other values, or a field a row lacks, leave the
quantity absent for that row. A bin whose map gives ``distance_mm`` but not ``fill_pct`` gets its fill level
from the distance and the bin's geometry (:mod:`ingest.codecs.fill_level`). Without a map a script codec feeds
no quantity: its decoded objects are kept with the raw uplinks only.

Exceptions::

    CodecError                  (ingest.codecs.base)
     +-- ReadingsMapError       a map that cannot be used (attributes: quantity)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..base import QUANTITIES, CodecError, Column
from ..fill_level import fill_pct

__all__ = ["ReadingRule", "ReadingsMap", "ReadingsMapError"]


class ReadingsMapError(CodecError):
    def __init__(self, quantity: str, message: str) -> None:
        super().__init__(f"readings map: {quantity}: {message}")
        self.quantity = quantity


@dataclass(frozen=True)
class ReadingRule:
    quantity: str
    path: tuple[str, ...]
    scale: float = 1.0
    values: tuple[tuple[str, float], ...] = ()

    def read(self, data: Sequence[Mapping[str, Any] | None]) -> Column:
        """The quantity for every row of decoded objects (None for failed rows)."""
        texts = dict(self.values)
        out = np.zeros(len(data), dtype=np.float64)
        present = np.zeros(len(data), dtype=bool)
        for i, obj in enumerate(data):
            value: Any = obj
            for key in self.path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str):
                value = texts.get(value)
            if isinstance(value, bool | int | float) and math.isfinite(value):
                out[i] = float(value)
                present[i] = True
        if self.scale != 1.0:
            out *= self.scale
        return Column(out, present)

    def as_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"field": ".".join(self.path)}
        if self.scale != 1.0:
            rule["scale"] = self.scale
        if self.values:
            rule["values"] = dict(self.values)
        return rule


@dataclass(frozen=True)
class ReadingsMap:
    rules: tuple[ReadingRule, ...] = ()

    @property
    def quantities(self) -> tuple[str, ...]:
        names = [r.quantity for r in self.rules]
        if "distance_mm" in names and "fill_pct" not in names:
            names.append("fill_pct")
        return tuple(names)

    @classmethod
    def parse(cls, doc: Any) -> ReadingsMap:
        """A map from its YAML/JSON form (see the module docstring); ``{"readings": {...}}`` is accepted too."""
        if doc is None:
            return cls()
        if isinstance(doc, dict) and set(doc) == {"readings"}:
            doc = doc["readings"]
        if not isinstance(doc, dict):
            raise ReadingsMapError("-", "expected a mapping of hub quantity -> decoded field")
        rules = []
        for quantity, spec in doc.items():
            if quantity not in QUANTITIES:
                known = ", ".join(QUANTITIES)
                raise ReadingsMapError(str(quantity), f"not a hub quantity (known: {known})")
            rules.append(_rule(str(quantity), spec))
        return cls(tuple(rules))

    def as_dict(self) -> dict[str, Any]:
        return {r.quantity: r.as_dict() for r in self.rules}

    def domain(self, data: Sequence[Mapping[str, Any] | None], params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        out = {r.quantity: r.read(data) for r in self.rules}
        if "distance_mm" in out and "fill_pct" not in out:
            out["fill_pct"] = fill_pct(out["distance_mm"], params)
        return out


def _rule(quantity: str, spec: Any) -> ReadingRule:
    if isinstance(spec, str):
        spec = {"field": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str) or not spec["field"]:
        raise ReadingsMapError(quantity, "expected a field name or {field: NAME, scale: NUMBER, values: {...}}")
    unknown = set(spec) - {"field", "scale", "values"}
    if unknown:
        raise ReadingsMapError(quantity, f"unknown keys {sorted(unknown)}")
    scale = spec.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise ReadingsMapError(quantity, "scale must be a number")
    values = spec.get("values") or {}
    if not isinstance(values, dict) or not all(
        isinstance(v, bool | int | float) and not isinstance(k, bool) for k, v in values.items()
    ):
        raise ReadingsMapError(quantity, "values must map texts to numbers or booleans")
    return ReadingRule(
        quantity,
        tuple(spec["field"].split(".")),
        float(scale),
        tuple((str(k), float(v)) for k, v in values.items()),
    )
