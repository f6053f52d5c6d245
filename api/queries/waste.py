"""Waste bins: configuration, fill series for the fits, last readings and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import dict_row

__all__ = ["bin_exists", "bins", "fill_series", "history_buckets", "history_raw", "last_readings"]

HISTORY_RAW_LIMIT = 20_000


async def bins(
    conn: AsyncConnection, *, site_id: str | None = None, waste_type: str | None = None, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Bins (of ``tenant``; None: of every tenant) with their (first) sensor's DevEUI and report interval."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT b.site_id, b.name, b.waste_type, b.volume_l, b.lat, b.lon, b.threshold_pct,
                  d.dev_eui, d.report_interval_s
           FROM sites b
           LEFT JOIN LATERAL (SELECT dev_eui, report_interval_s FROM devices WHERE site_id = b.site_id
                              ORDER BY created_at, dev_eui LIMIT 1) d ON true
           WHERE b.kind = 'bin' AND (%(site)s::text IS NULL OR b.site_id = %(site)s::text)
             AND (%(wt)s::text IS NULL OR b.waste_type = %(wt)s::text)
             AND (%(tenant)s::text IS NULL OR b.tenant = %(tenant)s::text)
           ORDER BY b.site_id""",
        {"site": site_id, "wt": waste_type, "tenant": tenant},
    )
    return await cur.fetchall()


async def bin_exists(conn: AsyncConnection, *, site_id: str, tenant: str | None = None) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM sites WHERE site_id = %(site)s AND kind = 'bin'"
        " AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)",
        {"site": site_id, "tenant": tenant},
    )
    return await cur.fetchone() is not None


async def fill_series(
    conn: AsyncConnection, *, site_ids: list[str], since: datetime, until: datetime
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per bin: epoch seconds and fill % of its readings in ``(since, until]``, ascending."""
    cur = conn.cursor(binary=True)
    await cur.execute(
        """SELECT site_id, array_agg(extract(epoch FROM time)::float8 ORDER BY time),
                  array_agg(fill_pct::float8 ORDER BY time)
           FROM bin_levels
           WHERE site_id = ANY(%(sites)s::text[]) AND time > %(since)s AND time <= %(until)s
             AND fill_pct IS NOT NULL
           GROUP BY site_id""",
        {"sites": site_ids, "since": since, "until": until},
    )
    return {
        sid: (np.asarray(times, dtype=np.float64), np.asarray(fills, dtype=np.float64))
        for sid, times, fills in await cur.fetchall()
    }


async def last_readings(
    conn: AsyncConnection, *, site_ids: list[str], since: datetime, until: datetime
) -> dict[str, dict[str, Any]]:
    """Per bin: the newest reading in ``(since, until]`` (time, fill, battery)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT DISTINCT ON (site_id) site_id, time, fill_pct, battery_v, battery_pct FROM bin_levels
           WHERE site_id = ANY(%(sites)s::text[]) AND time > %(since)s AND time <= %(until)s
           ORDER BY site_id, time DESC""",
        {"sites": site_ids, "since": since, "until": until},
    )
    return {r["site_id"]: r for r in await cur.fetchall()}


async def history_raw(conn: AsyncConnection, *, site_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT time, fill_pct, battery_v FROM bin_levels
           WHERE site_id = %s AND time >= %s AND time < %s ORDER BY time LIMIT %s""",
        (site_id, start, end, HISTORY_RAW_LIMIT),
    )
    return await cur.fetchall()


_HISTORY = """
SELECT {time} AS time, (array_agg(h.fill_last ORDER BY h.bucket DESC))[1] AS fill_pct,
       min(h.fill_min) AS fill_min, max(h.fill_max) AS fill_max, min(h.battery_v_min) AS battery_v,
       sum(h.readings)::int AS readings
FROM bin_levels_hourly h
WHERE h.site_id = %(site)s AND h.bucket >= %(start)s AND h.bucket < %(end)s
GROUP BY 1 ORDER BY 1
"""
_BY_BUCKET = {
    "hour": _HISTORY.replace("{time}", "h.bucket"),
    "day": _HISTORY.replace("{time}", "date_trunc('day', h.bucket, %(tz)s)"),
}


async def history_buckets(
    conn: AsyncConnection, *, site_id: str, start: datetime, end: datetime, bucket: str, tz: str
) -> list[dict[str, Any]]:
    """Hourly or daily (local days) fill from ``bin_levels_hourly``."""
    cur = conn.cursor(row_factory=dict_row)
    params: dict[str, Any] = {"site": site_id, "start": start, "end": end}
    if bucket == "day":
        params["tz"] = tz
    await cur.execute(_BY_BUCKET[bucket], params)
    return await cur.fetchall()
