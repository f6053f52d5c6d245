"""Open data: the static facts of lots and of the bus fleet that the feeds add to the live summaries."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

__all__ = ["fleet_facts", "lot_facts"]


async def lot_facts(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every lot's registry facts, in ``public_id`` order."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT public_id, site_id, name, lat, lon, lot_type, purpose, park_and_ride, address, opening_hours,
                  has_fee, fee_description, operator_name, public_url, created_at, updated_at
           FROM sites WHERE kind = 'lot' ORDER BY public_id"""
    )
    return await cur.fetchall()


async def fleet_facts(conn: AsyncConnection) -> dict[str, dict[str, dict[str, Any]]]:
    """Vehicles (capacities), lines (GTFS route_id) and stops (position) by ``site_id``, each under its kind."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT site_id, kind, name, lat, lon, capacity, seated_capacity, standing_capacity, gtfs_route_id
           FROM sites WHERE kind IN ('vehicle', 'line', 'stop')"""
    )
    out: dict[str, dict[str, dict[str, Any]]] = {"vehicle": {}, "line": {}, "stop": {}}
    for row in await cur.fetchall():
        out[row["kind"]][row["site_id"]] = row
    return out
