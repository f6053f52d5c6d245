"""The district overview: every town of the hub with its live figures, as a topic of the live hub.

Computed once per change for all towns: the parking and bus figures are sums over the hub's cached ``lots`` and
``vehicles`` / ``lines`` by the town of each site (``site_towns``, :mod:`.towns`); the towns and their bins over
threshold come from one statement (:mod:`.queries.district`). No query runs per town.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from stadtpuls.settings import Settings

from .live import LiveHub, Topic
from .queries import district as q
from .towns import SITE_TOWNS
from .waste import DEFAULT_THRESHOLD

__all__ = ["DISTRICT", "add_district", "district"]

DISTRICT = "district"


def _by_town(rows: Iterable[dict[str, Any]], key: str, sites: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        town = sites.get(r[key])
        if town is not None:
            out.setdefault(town, []).append(r)
    return out


def district(
    towns: list[dict[str, Any]],
    *,
    lots: list[dict[str, Any]],
    vehicles: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    sites: dict[str, str],
) -> dict[str, Any]:
    """Every town (``queries.district.towns`` rows) with its figures from the hub's live summaries; ``sites`` maps
    each ``site_id`` to its town."""
    lots_of = _by_town(lots, "lot_id", sites)
    vehicles_of = _by_town((v for v in vehicles if v["in_service"]), "vehicle_id", sites)
    lines_of = _by_town(lines, "line_id", sites)
    data = []
    for t in towns:
        slug = t["slug"]
        town_lots, town_buses = lots_of.get(slug, []), vehicles_of.get(slug, [])
        passengers = sum(v["passengers"] or 0 for v in town_buses)
        capacity = sum(v["capacity"] or 0 for v in town_buses)
        updated = [lot["updated_at"] for lot in town_lots if lot["updated_at"] is not None]
        data.append(
            {
                "slug": slug,
                "name": t["name"],
                "title": t["brand_name"] or t["name"],
                "logo_url": t["logo_url"],
                "colour": t["colour"],
                "parking": {
                    "lots": len(town_lots),
                    "capacity": sum(lot["capacity"] for lot in town_lots),
                    "free": sum(lot["free"] for lot in town_lots),
                    "occupied": sum(lot["occupied"] for lot in town_lots),
                    "updated_at": max(updated, default=None),
                },
                "buses": {
                    "lines": len(lines_of.get(slug, [])),
                    "vehicles_in_service": len(town_buses),
                    "passengers": passengers,
                    "capacity": capacity,
                    "occupancy_pct": round(100.0 * passengers / capacity, 1) if capacity else None,
                },
                "waste": {"bins": t["bins"], "over_threshold": t["bins_over_threshold"]},
                "links": {"parking": f"/t/{slug}/parking", "buses": f"/t/{slug}/buses", "api": f"/api/v1/t/{slug}"},
            }
        )
    return {"data": data, "count": len(data)}


def add_district(hub: LiveHub, settings: Settings) -> Topic:
    async def compute(pool: AsyncConnectionPool) -> dict[str, Any]:
        _, lots = await hub.get("lots")
        _, vehicles = await hub.get("vehicles")
        _, lines = await hub.get("lines")
        _, sites = await hub.get(SITE_TOWNS)
        since = datetime.now(UTC) - timedelta(days=settings.api_max_range_days)
        async with pool.connection() as conn:
            towns = await q.towns(conn, since=since, threshold=DEFAULT_THRESHOLD)
        return district(towns, lots=lots["data"], vehicles=vehicles["data"], lines=lines["data"], sites=sites["sites"])

    return hub.add(DISTRICT, compute, settings.api_cache_ttl)
