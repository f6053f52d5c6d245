"""Parking: lot summaries (the state of every space at an instant) and a lot's history.

A space's state is its sensor's last event at or before the instant; a sensor silent for longer than
``SILENT_FACTOR`` times its report interval (its heartbeat) makes the space unknown, not free.

A lot's history is time-weighted (space-seconds occupied and free per bucket, the counts at the bucket's end and
the fewest free spaces inside it): :mod:`api.queries.rollups` with :data:`~api.queries.rollups.PARKING_LOT`,
each bucket written as JSON by :data:`LOT_BUCKET_JSON`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from stadtpuls.schema import SILENT_FACTOR

__all__ = [
    "LOT_BUCKET_JSON",
    "SILENT_FACTOR",
    "lot_capacity",
    "lots",
    "spaces",
]


# Each space's state at ``at``: its sensors' last event at or before ``at``, fresh while younger than
# ``factor`` times the sensor's report interval. Shared by the lot summaries and the single spaces.
_SPACE_STATES = """
WITH t AS (SELECT coalesce(%(at)s::timestamptz, now()) AS at),
lots AS (
    SELECT site_id, name, capacity, lat, lon FROM sites
    WHERE kind = 'lot' AND (%(lot_id)s::text IS NULL OR site_id = %(lot_id)s::text)
      AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
),
last AS (
    SELECT DISTINCT ON (sp.site_id) sp.site_id, sp.parent_id AS lot_id, e.time, e.occupied,
           e.time >= t.at - make_interval(secs => %(factor)s * d.report_interval_s) AS fresh
    FROM sites sp
    JOIN lots l ON l.site_id = sp.parent_id
    JOIN devices d ON d.site_id = sp.site_id
    CROSS JOIN t
    LEFT JOIN LATERAL (
        SELECT pe.time, pe.occupied FROM parking_events pe
        WHERE pe.dev_eui = d.dev_eui AND pe.time <= t.at
        ORDER BY pe.time DESC LIMIT 1
    ) e ON true
    WHERE sp.kind = 'space'
    ORDER BY sp.site_id, e.time DESC NULLS LAST
)"""

_LOTS = (
    _SPACE_STATES
    + """,
spaces AS (
    SELECT parent_id AS lot_id, count(*) AS n FROM sites
    WHERE kind = 'space' AND parent_id IN (SELECT site_id FROM lots) GROUP BY parent_id
)
SELECT l.site_id AS lot_id, l.name, l.capacity, l.lat, l.lon,
       coalesce(sp.n, 0)::int AS spaces,
       count(last.site_id)::int AS sensors,
       (count(*) FILTER (WHERE last.fresh AND last.occupied))::int AS occupied,
       (count(*) FILTER (WHERE last.fresh AND NOT last.occupied))::int AS free,
       max(last.time) AS updated_at
FROM lots l
LEFT JOIN last ON last.lot_id = l.site_id
LEFT JOIN spaces sp ON sp.lot_id = l.site_id
GROUP BY l.site_id, l.name, l.capacity, l.lat, l.lon, sp.n
ORDER BY l.site_id
"""
)

_SPACES = (
    _SPACE_STATES
    + """
SELECT sp.site_id AS space_id, sp.public_id, sp.parent_id AS lot_id, sp.name, coalesce(sp.lat, l.lat) AS lat,
       coalesce(sp.lon, l.lon) AS lon, sp.purpose, sp.updated_at AS static_updated_at,
       sp.created_at, last.time AS updated_at, last.occupied, coalesce(last.fresh, false) AS fresh
FROM sites sp
JOIN lots l ON l.site_id = sp.parent_id
LEFT JOIN last ON last.site_id = sp.site_id
WHERE sp.kind = 'space'
ORDER BY sp.public_id
"""
)


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    capacity = row["capacity"] if row["capacity"] is not None else row["spaces"]
    free, occupied, sensors = row["free"], row["occupied"], row["sensors"]
    return {
        "lot_id": row["lot_id"],
        "name": row["name"],
        "capacity": capacity,
        "free": free,
        "occupied": occupied,
        "unknown": max(capacity - free - occupied, 0),
        "updated_at": row["updated_at"],
        "lat": row["lat"],
        "lon": row["lon"],
        "stale": sensors == 0 or 2 * (free + occupied) < sensors,
    }


async def lots(
    conn: AsyncConnection, *, at: datetime | None = None, lot_id: str | None = None, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Every lot (or one; of one tenant, or of all) with free/occupied/unknown spaces at ``at`` (default now), in
    ``lot_id`` order."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LOTS, {"at": at, "lot_id": lot_id, "tenant": tenant, "factor": SILENT_FACTOR})
    return [_summary(r) for r in await cur.fetchall()]


async def spaces(
    conn: AsyncConnection, *, at: datetime | None = None, lot_id: str | None = None, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Every space of every lot (or of one) with its state at ``at`` (default now), in ``public_id`` order:
    ``occupied`` and ``updated_at`` of its sensors' last event, ``fresh`` False for a silent or missing sensor."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_SPACES, {"at": at, "lot_id": lot_id, "tenant": tenant, "factor": SILENT_FACTOR})
    return await cur.fetchall()


async def lot_capacity(conn: AsyncConnection, *, lot_id: str, tenant: str | None = None) -> int | None:
    """The capacity of lot ``lot_id`` (of ``tenant``, when given; 0 when none is recorded), None if there is no
    such lot."""
    cur = await conn.execute(
        "SELECT coalesce(capacity, 0) FROM sites WHERE site_id = %s AND kind = 'lot'"
        " AND (%s::text IS NULL OR tenant = %s::text)",
        (lot_id, tenant, tenant),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


#: A lot's history bucket as a JSON object (for :func:`api.queries.rollups.history_json`, with ``capacity``):
#: the spaces at the bucket's end (unknown: the rest of the capacity), the mean occupied and free spaces over it
#: (two decimals, as Python rounds) and the fewest free spaces inside it.
LOT_BUCKET_JSON = sql.SQL(
    """'{"start":' || b.start_json || ',"end":' || b.end_json || ',"occupied":' || b.occupied_end
    || ',"free":' || b.free_end || ',"unknown":' || greatest(%(capacity)s - b.occupied_end - b.free_end, 0)
    || ',"occupied_avg":' || json_round2(b.occupied_s / b.seconds)
    || ',"free_avg":' || json_round2(b.free_s / b.seconds) || ',"free_min":' || b.free_min || '}'"""
)
