"""The open-data feeds as topics of the live hub, each derived from the API's own cached summaries (``lots``,
``vehicles``) and the registry facts the standards add, so a feed shows the numbers of ``/api/v1`` at the same
instant and is recomputed once per change however many clients poll it.

``parking_sites`` and ``parking_spots`` (ParkAPI list answers), ``datex2`` and ``datex2_spaces`` (built from
those, the lots alone or with every space) and ``vehicle_positions`` (a GTFS-Realtime ``FeedMessage``, its body
the protobuf bytes).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from stadtpuls.settings import Settings

from ..live import LiveHub
from ..queries import opendata as q
from ..queries import parking as parking_q
from . import datex2, gtfsrt, parkapi

__all__ = ["open_data_topics"]


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "total_count": len(items)}


def open_data_topics(hub: LiveHub, settings: Settings) -> None:
    tz = settings.timezone

    async def parking_sites(pool: AsyncConnectionPool) -> dict[str, Any]:
        _, lots = await hub.get("lots")
        async with pool.connection() as conn:
            facts = await q.lot_facts(conn)
        return _listing(parkapi.site_items(lots["data"], facts, now=datetime.now(UTC), tz=tz))

    async def parking_spots(pool: AsyncConnectionPool) -> dict[str, Any]:
        _, sites = await hub.get("parking_sites")
        async with pool.connection() as conn:
            spaces = await parking_q.spaces(conn)
        return _listing(parkapi.spot_items(spaces, sites["items"], now=datetime.now(UTC)))

    async def datex(pool: AsyncConnectionPool, *, spaces: bool = False) -> dict[str, Any]:
        _, sites = await hub.get("parking_sites")
        spots = (await hub.get("parking_spots"))[1]["items"] if spaces else []
        return datex2.publication(
            sites["items"],
            spots,
            name=settings.open_data_name,
            lang=settings.open_data_lang,
            published=str(parkapi.utc_text(datetime.now(UTC))),
        )

    async def datex_spaces(pool: AsyncConnectionPool) -> dict[str, Any]:
        return await datex(pool, spaces=True)

    async def vehicle_positions(pool: AsyncConnectionPool) -> Any:
        _, vehicles = await hub.get("vehicles")
        async with pool.connection() as conn:
            facts = await q.fleet_facts(conn)
        max_age = timedelta(seconds=settings.gtfs_rt_max_age)
        return gtfsrt.feed(vehicles["data"], facts, now=datetime.now(UTC), max_age=max_age)

    ttl = settings.api_cache_ttl
    hub.add("parking_sites", parking_sites, ttl)
    hub.add("parking_spots", parking_spots, ttl)
    hub.add("datex2", datex, ttl)
    hub.add("datex2_spaces", datex_spaces, ttl)
    hub.add("vehicle_positions", vehicle_positions, ttl, encode=lambda msg: msg.SerializeToString())
