"""Buses: occupancy per vehicle and line now, and hourly usage per line and stop.

A vehicle's passengers are the door counter's boardings minus alightings since the local day began, held at zero
from below: with S the running sum, the load is ``S_last - min(0, min S)`` (a walk reflected at zero). Vehicles
without door-counter rows today use the latest Paxcounter count.

A line's load over time comes from :mod:`api.queries.rollups` with :data:`~api.queries.rollups.LINE_LOAD`, each
bucket written as JSON by :data:`LINE_BUCKET_JSON`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

__all__ = ["IN_SERVICE_S", "LINE_BUCKET_JSON", "hourly", "line_exists", "lines", "vehicles"]

IN_SERVICE_S = 1800

_VEHICLES = """
WITH t AS (SELECT coalesce(%(at)s::timestamptz, now()) AS at),
day AS (SELECT t.at, date_trunc('day', t.at, %(tz)s) AS since FROM t),
rows AS (
    SELECT pc.* FROM passenger_counts pc, day
    WHERE pc.time >= day.since AND pc.time <= day.at AND pc.site_id IS NOT NULL
),
door AS (
    SELECT site_id, time,
           sum(coalesce(pax_in, 0) - coalesce(pax_out, 0)) OVER (PARTITION BY site_id ORDER BY time, dev_eui) AS s
    FROM rows WHERE pax_in IS NOT NULL OR pax_out IS NOT NULL
),
door_now AS (
    SELECT site_id, (array_agg(s ORDER BY time DESC))[1] - least(0, min(s)) AS passengers, max(time) AS at
    FROM door GROUP BY site_id
),
pax_now AS (
    SELECT DISTINCT ON (site_id) site_id, pax_count, time AS at FROM rows
    WHERE pax_count IS NOT NULL ORDER BY site_id, time DESC
),
stop_now AS (
    SELECT DISTINCT ON (site_id) site_id, stop_id FROM rows WHERE stop_id IS NOT NULL ORDER BY site_id, time DESC
),
latest AS (SELECT site_id, max(time) AS at FROM rows GROUP BY site_id)
SELECT v.site_id AS vehicle_id, v.name, v.parent_id AS line_id, v.capacity,
       coalesce(dn.passengers, pn.pax_count) AS passengers,
       CASE WHEN dn.site_id IS NOT NULL THEN 'door_counter' WHEN pn.site_id IS NOT NULL THEN 'paxcounter' END
           AS source,
       sn.stop_id, st.name AS stop_name, l.at AS updated_at,
       coalesce(l.at >= (SELECT at FROM t) - make_interval(secs => %(in_service)s), false) AS in_service
FROM sites v
LEFT JOIN door_now dn ON dn.site_id = v.site_id
LEFT JOIN pax_now pn ON pn.site_id = v.site_id
LEFT JOIN stop_now sn ON sn.site_id = v.site_id
LEFT JOIN sites st ON st.site_id = sn.stop_id
LEFT JOIN latest l ON l.site_id = v.site_id
WHERE v.kind = 'vehicle' AND (%(tenant)s::text IS NULL OR v.tenant = %(tenant)s::text)
ORDER BY v.site_id
"""


def _pct(passengers: int | None, capacity: int | None) -> float | None:
    if passengers is None or not capacity:
        return None
    return round(100.0 * passengers / capacity, 1)


async def vehicles(
    conn: AsyncConnection, *, tz: str, at: datetime | None = None, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Every vehicle (of ``tenant``, when given) with its passengers at ``at`` (default now)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_VEHICLES, {"at": at, "tz": tz, "in_service": IN_SERVICE_S, "tenant": tenant})
    out = []
    for r in await cur.fetchall():
        passengers = int(r["passengers"]) if r["passengers"] is not None else None
        out.append({**r, "passengers": passengers, "occupancy_pct": _pct(passengers, r["capacity"])})
    return out


async def lines(conn: AsyncConnection, *, vehicles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every line with the sums over its vehicles in service (``vehicles`` as returned by :func:`vehicles`)."""
    cur = await conn.execute("SELECT site_id, name FROM sites WHERE kind = 'line' ORDER BY site_id")
    by_line: dict[str, dict[str, Any]] = {
        lid: {"line_id": lid, "name": name, "vehicles": 0, "passengers": 0, "capacity": 0, "updated_at": None}
        for lid, name in await cur.fetchall()
    }
    for v in vehicles:
        line = by_line.get(v["line_id"] or "")
        if line is None or not v["in_service"]:
            continue
        line["vehicles"] += 1
        line["passengers"] += v["passengers"] or 0
        line["capacity"] += v["capacity"] or 0
        if v["updated_at"] is not None and (line["updated_at"] is None or v["updated_at"] > line["updated_at"]):
            line["updated_at"] = v["updated_at"]
    for line in by_line.values():
        line["occupancy_pct"] = _pct(line["passengers"], line["capacity"])
    return list(by_line.values())


async def stops(conn: AsyncConnection, *, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every stop (of ``tenant``, when given) with its position, by line and order along it (the lines as drawn on
    a map)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT site_id AS stop_id, name, parent_id AS line_id, seq, lat, lon
           FROM sites WHERE kind = 'stop' AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
           ORDER BY parent_id NULLS LAST, seq NULLS LAST, site_id""",
        {"tenant": tenant},
    )
    return await cur.fetchall()


async def line_exists(conn: AsyncConnection, *, line_id: str, tenant: str | None = None) -> bool:
    """Whether ``line_id`` is a bus line (of ``tenant``, when given)."""
    cur = await conn.execute(
        "SELECT 1 FROM sites WHERE site_id = %s AND kind = 'line' AND (%s::text IS NULL OR tenant = %s::text)",
        (line_id, tenant, tenant),
    )
    return await cur.fetchone() is not None


async def hourly(conn: AsyncConnection, *, line_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Boardings and alightings per hour and stop from ``passengers_hourly``, hours in ``[start, end)``."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT h.bucket AS hour, h.stop_id, st.name AS stop_name, st.seq,
                  coalesce(sum(h.pax_in), 0)::int AS boardings, coalesce(sum(h.pax_out), 0)::int AS alightings,
                  max(h.pax_count_max)::int AS pax_count_max
           FROM passengers_hourly h LEFT JOIN sites st ON st.site_id = h.stop_id
           WHERE h.line_id = %(line)s AND h.bucket >= %(start)s AND h.bucket < %(end)s
           GROUP BY h.bucket, h.stop_id, st.name, st.seq
           ORDER BY h.bucket, st.seq NULLS LAST, h.stop_id NULLS LAST""",
        {"line": line_id, "start": start, "end": end},
    )
    return await cur.fetchall()


#: A line's load bucket as a JSON object (for :func:`api.queries.rollups.history_json`): the mean passengers on
#: board over the bucket (two decimals, as Python rounds), those on board and the vehicles reporting at its end,
#: the boardings and alightings counted in it.
LINE_BUCKET_JSON = sql.SQL(
    """'{"start":' || b.start_json || ',"end":' || b.end_json
    || ',"on_board_avg":' || json_round2(b.on_board_s / b.seconds) || ',"on_board":' || b.on_board_end
    || ',"vehicles":' || b.vehicles_end || ',"boardings":' || b.pax_in || ',"alightings":' || b.pax_out || '}'"""
)
