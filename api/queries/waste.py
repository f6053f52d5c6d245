"""Waste bins: configuration, fill series for the fits, last readings and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from . import fragments
from .rollups import WIDTHS

__all__ = [
    "bin_exists",
    "bins",
    "fill_series",
    "history_buckets",
    "history_json",
    "history_raw",
    "last_readings",
]

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


# A bin's fill per bucket, merged from pieces: whole buckets from their rollup (before ``closed``), the open day's
# rolled-up hours (before ``raw_from``), and the readings from ``raw_from`` on (the open hour, spans the ingest
# queued and has not rolled up yet). Minima, maxima and sums merge; the last fill is the latest piece's.
_HISTORY = """
SELECT b AS time, (array_agg(fill_last ORDER BY at DESC))[1] AS fill_pct, min(fill_min) AS fill_min,
       max(fill_max) AS fill_max, sum(fill_sum) / sum(readings) AS fill_avg, min(battery_v_min) AS battery_v,
       sum(readings)::int AS readings
FROM (
    SELECT bucket AS b, bucket AS at, fill_last, fill_min, fill_max, fill_sum, readings, battery_v_min
    FROM {table} WHERE site_id = %(site)s AND bucket >= %(start)s AND bucket < %(closed)s
                   AND NOT (bucket >= %(kept_lo)s AND bucket < %(kept_hi)s)
    UNION ALL
    SELECT %(closed)s, bucket, fill_last, fill_min, fill_max, fill_sum, readings, battery_v_min
    FROM bin_fill_hourly WHERE site_id = %(site)s AND bucket >= greatest(%(closed)s, %(start)s)
                           AND bucket < %(raw_from)s AND %(day)s
    UNION ALL
    SELECT rollup_floor(time, %(width)s, %(tz)s), time, fill_pct, fill_pct, fill_pct, fill_pct, 1, battery_v
    FROM bin_levels WHERE site_id = %(site)s AND fill_pct IS NOT NULL
                      AND time >= greatest(%(raw_from)s, %(start)s) AND time < least(%(end)s, %(now)s)
) piece
GROUP BY b ORDER BY b
"""
_TABLES = {"hour": "bin_fill_hourly", "day": "bin_fill_daily"}


async def _bounds(
    conn: AsyncConnection, *, site_id: str, start: datetime, end: datetime, bucket: str, tz: str, now: datetime
) -> dict[str, Any]:
    """The pieces' bounds: whole buckets from the rollup before ``closed``, the readings from ``raw_from`` on;
    ``keeps``: whether the rollup job keeps the hours (a table: plain PostgreSQL; on TimescaleDB a continuous
    aggregate refreshes on its own, no day is kept there)."""
    width = WIDTHS[bucket]
    cur = await conn.execute(
        """SELECT rollup_floor(%(start)s, %(w)s, %(tz)s), raw_from, rollup_floor(raw_from, %(w)s, %(tz)s),
                  rollup_timezone() = %(tz)s,
                  (SELECT relkind = 'r' FROM pg_class WHERE oid = 'bin_fill_hourly'::regclass)
           FROM (SELECT rollup_floor(least(%(open)s, (SELECT min(first) FROM rollup_dirty
                                                      WHERE kind = 'bin_fill' AND key = %(site)s)),
                                     interval '1 hour', %(tz)s) AS raw_from) r""",
        {"start": start, "open": min(end, now), "w": width, "tz": tz, "site": site_id},
    )
    row = await cur.fetchone()
    assert row is not None
    first, raw_from, closed, rolled, keeps = row
    if not rolled:
        raw_from = closed = first
    return {
        "site": site_id,
        "key": site_id,
        "start": first,
        "end": end,
        "now": now,
        "closed": closed,
        "raw_from": raw_from,
        "kept_lo": closed,  # no kept days
        "kept_hi": closed,
        "keeps": bool(keeps) and rolled,
        "day": bucket == "day",
        "width": width,
        "tz": tz,
    }


async def _rows(conn: AsyncConnection, bucket: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    rows = conn.cursor(row_factory=dict_row, binary=True)  # up to 40,000 buckets: binary values parse faster
    await rows.execute(sql.SQL(_HISTORY).format(table=sql.Identifier(_TABLES[bucket])), args)
    return await rows.fetchall()


async def history_buckets(
    conn: AsyncConnection, *, site_id: str, start: datetime, end: datetime, bucket: str, tz: str, now: datetime
) -> list[dict[str, Any]]:
    """A bin's fill per hour or local day of ``tz`` (the buckets with a reading in ``[start, end)`` before ``now``,
    the first bucket whole): the last, lowest, highest and mean fill, the lowest battery voltage and the number of
    readings with a fill level. Buckets that have ended come from the rollups (migration 0019), the open one and
    the spans not rolled up yet from the readings; every bucket from the readings when the rollups are bucketed in
    another time zone."""
    args = await _bounds(conn, site_id=site_id, start=start, end=end, bucket=bucket, tz=tz, now=now)
    return await _rows(conn, bucket, args)


#: a bin's hour as the JSON object orjson writes for its row in :func:`history_json`, from ``bin_fill_hourly``
#: ``h``, in the statement's time zone
_BUCKET_JSON = sql.SQL(
    """'{"time":' || json_time(h.bucket) || ',"fill_pct":' || json_number(h.fill_last)
    || ',"fill_min":' || json_number(h.fill_min) || ',"fill_max":' || json_number(h.fill_max)
    || ',"fill_avg":' || json_number(h.fill_sum / h.readings) || ',"battery_v":' || json_number(h.battery_v_min)
    || ',"readings":' || h.readings || '}'"""
)
#: the hours of ``[%(missing_lo)s, %(missing_hi)s)`` as ``start``, ``text`` (for :func:`fragments.keep_missing`)
_TEXTS = sql.SQL(
    "SELECT h.bucket AS start, {row} AS text FROM (SELECT set_config('TimeZone', %(tz)s, true) AS zone) z,"
    " LATERAL (SELECT * FROM bin_fill_hourly WHERE site_id = %(key)s AND bucket >= %(missing_lo)s"
    "          AND bucket < %(missing_hi)s AND z.zone IS NOT NULL OFFSET 0) h"
).format(row=_BUCKET_JSON)


async def _kept(conn: AsyncConnection, args: dict[str, Any]) -> tuple[bytes, int] | None:
    """The kept days' text, joined, and their buckets, or None if some day is not kept."""
    cur = await conn.cursor(binary=True).execute(
        sql.SQL(
            "SELECT convert_to(coalesce(string_agg(k.text, ',' ORDER BY k.start) FILTER (WHERE k.n > 0), ''),"
            " 'UTF8'), coalesce(sum(k.n), 0)::int, count(*) = {days} FROM ({kept}) k"
        ).format(kept=fragments.KEPT_TEXTS, days=fragments.DAYS),
        args,
    )
    found = await cur.fetchone()
    assert found is not None
    return (found[0], found[1]) if found[2] else None


async def history_json(
    conn: AsyncConnection, *, site_id: str, start: datetime, end: datetime, bucket: str, tz: str, now: datetime
) -> tuple[bytes, int]:
    """The buckets of :func:`history_buckets` as the JSON text of their array's items (without the brackets),
    times in ``tz``, and their number. Hours of whole days that have ended and are rolled up are read as the days'
    kept text (migration 0024, plain PostgreSQL), written by the first answer that needs a day; the other buckets
    are written by orjson."""
    args = await _bounds(conn, site_id=site_id, start=start, end=end, bucket=bucket, tz=tz, now=now)
    before = None if conn.autocommit else conn.info.parameter_status("TimeZone")
    kept = None
    if bucket == "hour" and args["keeps"] and args["closed"] - args["start"] >= fragments.MIN_SPAN:
        kept_lo, kept_hi = await fragments.whole_days(conn, args["start"], args["closed"], tz)
        args |= {
            "kind": "bin_fill",
            "fingerprint": fragments.fingerprint(_BUCKET_JSON, {}),
            "kept_lo": kept_lo,
            "kept_hi": kept_hi,
        }
        kept = await _kept(conn, args)
        if kept is None and await fragments.keep_missing(conn, _TEXTS, args):
            kept = await _kept(conn, args)
        if before is not None:  # in a caller's transaction: the session's zone back for the rest of it
            await conn.execute("SELECT set_config('TimeZone', %s, true)", (before,))
    if kept is None:
        args |= {"kept_lo": args["closed"], "kept_hi": args["closed"]}
    rows = await _rows(conn, bucket, args)
    zone = ZoneInfo(tz)
    for r in rows:
        r["time"] = r["time"].astimezone(zone)
    split = next((k for k, r in enumerate(rows) if r["time"] >= args["kept_lo"]), len(rows))
    text, n = kept or (b"", 0)
    parts = (
        orjson.dumps(rows[:split], option=orjson.OPT_UTC_Z)[1:-1],
        text,
        orjson.dumps(rows[split:], option=orjson.OPT_UTC_Z)[1:-1],
    )
    return b",".join(p for p in parts if p), len(rows) + n
