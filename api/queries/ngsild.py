"""NGSI-LD: the current entities' inputs beyond the shared summaries, and the history of one measured attribute."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

__all__ = ["HISTORY", "history", "site_ids", "stop_positions"]

#: entity type -> (reading table, column) of its measured attribute's history
HISTORY: dict[str, tuple[str, str, str]] = {
    "WasteContainer": ("fillingLevel", "bin_levels", "fill_pct"),
    "ParkingSpot": ("status", "parking_events", "occupied"),
    "CrowdFlowObserved": ("peopleCount", "passenger_counts", "pax_count"),
}


async def stop_positions(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT site_id, lat, lon FROM sites WHERE kind = 'stop' AND lat IS NOT NULL AND lon IS NOT NULL")
    return {r["site_id"]: r for r in await cur.fetchall()}


async def site_ids(conn: AsyncConnection, *, kind: str, tenant: str) -> set[str]:
    """The ids of one tenant's sites of one kind."""
    cur = await conn.execute("SELECT site_id FROM sites WHERE kind = %s AND tenant = %s", (kind, tenant))
    return {r[0] for r in await cur.fetchall()}


async def history(
    conn: AsyncConnection,
    *,
    kind: str,
    site_id: str,
    start: datetime | None,
    end: datetime | None,
    last_n: int | None,
) -> list[dict[str, Any]]:
    """(time, value) of the site's readings in ``[start, end)``, oldest first (the newest ``last_n`` with it)."""
    _, table, column = HISTORY[kind]
    query = sql.SQL(
        """SELECT time, {col} AS value FROM {tbl}
           WHERE site_id = %(site)s AND {col} IS NOT NULL
             AND (%(start)s::timestamptz IS NULL OR time >= %(start)s)
             AND (%(end)s::timestamptz IS NULL OR time < %(end)s)
           ORDER BY time DESC LIMIT %(n)s"""
    ).format(col=sql.Identifier(column), tbl=sql.Identifier(table))
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, {"site": site_id, "start": start, "end": end, "n": last_n})
    return list(reversed(await cur.fetchall()))
