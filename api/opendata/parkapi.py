"""ParkAPI v3 (the parking model of ParkenDD and MobiData BW): parking sites, single parking spots and the source,
as views over the lot summaries and space states of :mod:`stadtpuls.api.queries.parking`.

Pure functions; the routes feed them the cached summaries. Field names, value lists and units follow ParkAPI v3:

* a site is a lot: ``id`` (the site's integer ``public_id``), ``original_uid`` (its ``site_id``), ``type``,
  ``purpose`` and the other static facts from the site registry; ``capacity``; the realtime numbers are the lot
  summary's (``realtime_free_capacity`` is the ``free`` of ``/api/v1/parking/lots`` at the same instant,
  ``realtime_capacity`` the lot's capacity, so silent sensors never count as free);
* ``has_realtime_data`` is false when the lot's newest reading is older than :data:`REALTIME_MAX_AGE` or more than
  half of its sensors are silent; the realtime fields are given anyway, ``realtime_data_updated_at`` shows their age;
* ``realtime_opening_status`` evaluates the OpenStreetMap ``opening_hours`` at the instant (UNKNOWN without them);
* a spot is a space: ``realtime_status`` AVAILABLE / TAKEN from a sensor heard within 2.5 report intervals,
  UNKNOWN for a silent or missing sensor;
* lists page by cursor as ParkAPI does: ordered by ``id``, ``start`` is the first ``id`` to return, ``limit`` the
  page size (all when absent); a full page carries ``next_id`` and ``next_path``.

Lots without coordinates are left out (ParkAPI requires ``lat``/``lon``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from opening_hours import OpeningHours, ParserError  # type: ignore[attr-defined]  # missing from its stub

__all__ = [
    "REALTIME_MAX_AGE",
    "SOURCE_ID",
    "GeoFilter",
    "opening_status",
    "page",
    "site_items",
    "source_item",
    "spot_items",
    "utc_text",
]

SOURCE_ID = 1  # one hub, one source
REALTIME_MAX_AGE = timedelta(minutes=30)
EARTH_RADIUS_M = 6_371_008.8


def utc_text(t: datetime | None) -> str | None:
    """ParkAPI's date-time form: UTC, whole seconds, ``Z``."""
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def opening_status(hours: str | None, at: datetime, tz: str) -> str:
    """OPEN / CLOSED at ``at`` by the OpenStreetMap ``opening_hours`` (local time ``tz``); UNKNOWN without them."""
    if not hours:
        return "UNKNOWN"
    zone = ZoneInfo(tz)
    try:
        oh = OpeningHours(hours, timezone=zone)
    except (ParserError, SyntaxError, ValueError):
        return "UNKNOWN"
    at = at.astimezone(zone)  # the library takes aware times in a ZoneInfo zone only
    if oh.is_open(at):
        return "OPEN"
    return "CLOSED" if oh.is_closed(at) else "UNKNOWN"


def _coord(x: float) -> float:
    return round(float(x), 7)


def _static(fact: dict[str, Any]) -> dict[str, Any]:
    """The optional static fields a lot has in the registry (absent ones are left out, as ParkAPI does)."""
    out: dict[str, Any] = {}
    for name in ("address", "operator_name", "public_url", "fee_description", "has_fee", "opening_hours"):
        if fact[name] is not None:
            out[name] = fact[name]
    if fact["park_and_ride"]:
        out["park_and_ride_type"] = list(fact["park_and_ride"])
    return out


def site_items(
    lots: Sequence[dict[str, Any]], facts: Sequence[dict[str, Any]], *, now: datetime, tz: str
) -> list[dict[str, Any]]:
    """ParkAPI parking sites in ``id`` order from the lot summaries (``queries.parking.lots``) and the lots'
    registry facts (``queries.opendata.lot_facts``)."""
    by_lot = {lot["lot_id"]: lot for lot in lots}
    items = []
    for fact in facts:
        lot = by_lot.get(fact["site_id"])
        if lot is None or fact["lat"] is None or fact["lon"] is None:
            continue
        updated = lot["updated_at"]
        item: dict[str, Any] = {
            "id": fact["public_id"],
            "source_id": SOURCE_ID,
            "original_uid": fact["site_id"],
            "name": fact["name"] or fact["site_id"],
            "type": fact["lot_type"] or "OTHER",
            "purpose": fact["purpose"] or "CAR",
            "lat": _coord(fact["lat"]),
            "lon": _coord(fact["lon"]),
            "capacity": lot["capacity"],
            **_static(fact),
            "has_realtime_data": updated is not None and now - updated <= REALTIME_MAX_AGE and not lot["stale"],
            "realtime_opening_status": opening_status(fact["opening_hours"], now, tz),
            "static_data_updated_at": utc_text(fact["updated_at"]),
            "created_at": utc_text(fact["created_at"]),
            "modified_at": utc_text(fact["updated_at"]),
        }
        if updated is not None:
            item["realtime_data_updated_at"] = utc_text(updated)
            item["realtime_capacity"] = lot["capacity"]
            item["realtime_free_capacity"] = lot["free"]
        items.append(item)
    return items


def spot_items(
    spaces: Sequence[dict[str, Any]], sites: Sequence[dict[str, Any]], *, now: datetime
) -> list[dict[str, Any]]:
    """ParkAPI parking spots in ``id`` order from the space states (``queries.parking.spaces``); ``sites`` are the
    parking sites of :func:`site_items` (a spot takes its site's ``id`` and ``purpose``)."""
    by_lot = {s["original_uid"]: s for s in sites}
    items = []
    for sp in spaces:
        site = by_lot.get(sp["lot_id"])
        if site is None or sp["lat"] is None or sp["lon"] is None:
            continue
        updated = sp["updated_at"]
        if sp["fresh"]:
            status = "TAKEN" if sp["occupied"] else "AVAILABLE"
        else:
            status = "UNKNOWN"
        item: dict[str, Any] = {
            "id": sp["public_id"],
            "source_id": SOURCE_ID,
            "parking_site_id": site["id"],
            "original_uid": sp["space_id"],
            "purpose": sp["purpose"] or site["purpose"],
            "lat": _coord(sp["lat"]),
            "lon": _coord(sp["lon"]),
            "has_realtime_data": bool(sp["fresh"]) and updated is not None and now - updated <= REALTIME_MAX_AGE,
            "realtime_status": status,
            "static_data_updated_at": utc_text(sp["static_updated_at"]),
            "created_at": utc_text(sp["created_at"]),
            "modified_at": utc_text(sp["static_updated_at"]),
        }
        if sp["name"]:
            item["name"] = sp["name"]
        if updated is not None:
            item["realtime_data_updated_at"] = utc_text(updated)
        items.append(item)
    return items


def source_item(
    *, uid: str, name: str, public_url: str, license: str | None, sites: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The one ParkAPI source this hub is, with the newest static and realtime update of its sites."""
    static = max((s["static_data_updated_at"] for s in sites), default=None)
    realtime = max((s["realtime_data_updated_at"] for s in sites if "realtime_data_updated_at" in s), default=None)
    item: dict[str, Any] = {
        "id": SOURCE_ID,
        "uid": uid,
        "name": name,
        "public_url": public_url,
        "static_status": "ACTIVE",
        "realtime_status": "ACTIVE" if realtime else "PROVISIONED",
    }
    if license:
        item["attribution_license"] = license
    if static:
        item["static_data_updated_at"] = static
        item["created_at"] = min(s["created_at"] for s in sites)
        item["modified_at"] = static
    if realtime:
        item["realtime_data_updated_at"] = realtime
    return item


@dataclass(frozen=True)
class GeoFilter:
    """Around a point (``lat``, ``lon``, ``radius`` in metres) and/or inside a box (``lat_min`` ... ``lon_max``)."""

    lat: float | None = None
    lon: float | None = None
    radius: float | None = None
    lat_min: float | None = None
    lat_max: float | None = None
    lon_min: float | None = None
    lon_max: float | None = None

    def problem(self) -> str | None:
        """Why the parameters do not go together, or None."""
        point = (self.lat, self.lon, self.radius)
        if any(v is not None for v in point) and any(v is None for v in point):
            return "lat, lon and radius have all to be set if one is set"
        box = (self.lat_min, self.lat_max, self.lon_min, self.lon_max)
        if any(v is not None for v in box) and any(v is None for v in box):
            return "lat_min, lat_max, lon_min and lon_max have all to be set if one is set"
        if self.lat_min is not None and (self.lat_min > self.lat_max or self.lon_min > self.lon_max):  # type: ignore[operator]
            return "lat_min and lon_min must not be greater than lat_max and lon_max"
        return None

    @property
    def active(self) -> bool:
        return self.radius is not None or self.lat_min is not None

    def keeps(self, lat: float, lon: float) -> bool:
        if self.lat_min is not None:
            if not (self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max):  # type: ignore[operator]
                return False
        if self.radius is not None:
            assert self.lat is not None and self.lon is not None
            p1, p2 = math.radians(self.lat), math.radians(lat)
            dp, dl = p2 - p1, math.radians(lon - self.lon)
            h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
            return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h))) <= self.radius
        return True


def page(
    items: Sequence[dict[str, Any]], *, start: int, limit: int | None, path: str, params: dict[str, Any]
) -> dict[str, Any]:
    """ParkAPI's list answer ``{items, total_count[, next_id, next_path]}`` over ``items`` in ``id`` order:
    those with ``id >= start``, at most ``limit``; ``total_count`` counts every item that matched the filters."""
    first = bisect_left(items, start, key=lambda i: i["id"]) if start else 0
    chosen = list(items[first : None if limit is None else first + limit])
    out: dict[str, Any] = {"items": chosen, "total_count": len(items)}
    if limit is not None and chosen and len(chosen) == limit:
        next_id = chosen[-1]["id"] + 1
        query = {k: v for k, v in params.items() if v is not None and k not in ("start", "limit")}
        out["next_id"] = next_id
        out["next_path"] = f"{path}?{urlencode({**query, 'start': next_id, 'limit': limit})}"
    return out
