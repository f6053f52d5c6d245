"""The current NGSI-LD entities of some types, built from the API's own summaries (one query per type)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from ..queries import buses as buses_q
from ..queries import ngsild as ngsild_q
from ..queries import parking as parking_q
from ..queries import waste as waste_q
from . import models as m

__all__ = ["current_entities"]


async def current_entities(
    conn: AsyncConnection, types: Iterable[str], *, tz: str, max_age_days: int, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Every entity of ``types`` now (of ``tenant``'s sites, when given); a bin's fill level is its newest reading
    of the last ``max_age_days``."""
    types = set(types)
    out: list[dict[str, Any]] = []
    if "OffStreetParking" in types:
        out += [m.lot(r) for r in await parking_q.lots(conn, tenant=tenant)]
    if "ParkingSpot" in types:
        out += [m.space(r) for r in await parking_q.spaces(conn, tenant=tenant)]
    if "WasteContainer" in types:
        bins = await waste_q.bins(conn)
        if tenant is not None:
            town = await ngsild_q.site_ids(conn, kind="bin", tenant=tenant)
            bins = [b for b in bins if b["site_id"] in town]
        now = datetime.now(UTC)
        since = now - timedelta(days=max_age_days)
        last = await waste_q.last_readings(conn, site_ids=[b["site_id"] for b in bins], since=since, until=now)
        out += [m.waste_container(b, last.get(b["site_id"])) for b in bins]
    if "CrowdFlowObserved" in types:
        stops = await ngsild_q.stop_positions(conn)
        out += [m.vehicle(v, stops.get(v["stop_id"])) for v in await buses_q.vehicles(conn, tz=tz, tenant=tenant)]
    return out
