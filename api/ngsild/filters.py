"""The NGSI-LD query language (``q``) and geo-queries (``georel``, ``geometry``, ``coordinates``) for the common
cases, evaluated on built entities.

``q``: terms ``attr<op>value`` with ``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, joined by ``;`` (and) and
``|`` (or, binding looser); values are numbers, ``"strings"``, ``true``/``false``, or a URI for a Relationship.
``georel``: ``near;maxDistance==<m>`` / ``near;minDistance==<m>`` with a Point, ``within`` / ``intersects``
with a Polygon (one ring), ``equals`` with a Point; distances are great-circle metres.

Exceptions::

    QueryError(ValueError)      a ``q`` or geo-query the parser refuses (answered with 400 BadRequestData)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["GeoQuery", "QueryError", "parse_geoquery", "parse_q"]

Entity = Mapping[str, Any]
Test = Callable[[Entity], bool]
_TERM = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
EARTH_M = 6_371_008.8


class QueryError(ValueError):
    pass


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    try:
        return float(text)
    except ValueError:
        if ":" in text:  # a URI, compared with a Relationship's object
            return text
        raise QueryError(f"q: {text!r} is not a number, a quoted string, true, false or a URI") from None


def _attr(entity: Entity, name: str) -> Any:
    attr = entity.get(name)
    if not isinstance(attr, dict):
        return None
    return attr.get("object") if attr.get("type") == "Relationship" else attr.get("value")


def _term(text: str) -> Test:
    m = _TERM.match(text)
    if m is None:
        raise QueryError(f"q: {text!r} is not 'attribute<op>value' (ops ==, !=, >, >=, <, <=)")
    name, op, raw = m.groups()
    want, fn = _value(raw), _OPS[op]

    def test(entity: Entity) -> bool:
        have = _attr(entity, name)
        if have is None or isinstance(have, bool) != isinstance(want, bool):
            return False
        if isinstance(have, int | float) != isinstance(want, int | float):
            return False
        return bool(fn(have, want))

    return test


def parse_q(text: str) -> Test:
    """A predicate on entities from a ``q`` expression; :class:`QueryError` when it is not one."""
    if not text.strip() or "(" in text:
        raise QueryError("q: an empty expression or parentheses (not supported); use ';' for and, '|' for or")
    groups = [[_term(t) for t in part.split(";")] for part in text.split("|")]
    return lambda e: any(all(t(e) for t in group) for group in groups)


def _distance(a: list[float], b: list[float]) -> float:
    (lon1, lat1), (lon2, lat2) = (map(math.radians, p) for p in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def _inside(p: list[float], ring: list[list[float]]) -> bool:
    x, y, inside = p[0], p[1], False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@dataclass(frozen=True)
class GeoQuery:
    relation: str  # near | within | intersects | equals
    geometry: dict[str, Any]
    max_distance: float | None = None
    min_distance: float | None = None

    def __call__(self, entity: Entity) -> bool:
        loc = entity.get("location")
        if not isinstance(loc, dict) or loc.get("value", {}).get("type") != "Point":
            return False
        point = loc["value"]["coordinates"]
        coords = self.geometry["coordinates"]
        if self.relation == "near":
            d = _distance(point, coords)
            return (self.max_distance is None or d <= self.max_distance) and (
                self.min_distance is None or d >= self.min_distance
            )
        if self.relation == "equals":
            return bool(point == coords)
        return _inside(point, coords[0])


def parse_geoquery(georel: str, geometry: str | None, coordinates: str | None) -> GeoQuery:
    """A geo-query from the request's ``georel``, ``geometry`` and ``coordinates``."""
    if not geometry or not coordinates:
        raise QueryError("georel needs geometry and coordinates")
    try:
        coords = orjson.loads(coordinates)
    except orjson.JSONDecodeError:
        raise QueryError("coordinates must be a JSON array, e.g. [13.4,52.5]") from None
    relation, *params = georel.split(";")
    shape = {"type": geometry, "coordinates": coords}
    if relation in ("near", "equals"):
        if geometry != "Point" or not _position(coords):
            raise QueryError(f"georel {relation} takes a Point [lon,lat]")
    elif relation in ("within", "intersects"):
        if geometry != "Polygon" or not (isinstance(coords, list) and coords and all(_position(p) for p in coords[0])):
            raise QueryError(f"georel {relation} takes a Polygon [[[lon,lat],...]]")
        if len(coords[0]) < 4 or coords[0][0] != coords[0][-1]:
            raise QueryError("a Polygon ring needs four positions or more, the last equal to the first")
    else:
        raise QueryError(f"georel {relation!r} is not supported (near, within, intersects, equals)")
    limits: dict[str, float] = {}
    for p in params:
        key, eq, value = p.partition("==")
        if key not in ("maxDistance", "minDistance") or not eq:
            raise QueryError(f"georel modifier {p!r}: maxDistance==<m> or minDistance==<m>")
        try:
            limits[key] = float(value)
        except ValueError:
            raise QueryError(f"{key} must be a number of metres") from None
    if relation == "near" and not limits:
        raise QueryError("georel near needs maxDistance==<m> or minDistance==<m>")
    return GeoQuery(relation, shape, limits.get("maxDistance"), limits.get("minDistance"))


def _position(p: Any) -> bool:
    return isinstance(p, list) and len(p) == 2 and all(isinstance(c, int | float) for c in p)
