"""History from the rollups of migrations 0008 and 0019, for any rolled-up quantity (a lot's occupancy, a line's
load).

Buckets that have ended come from the coarsest rollup that answers them (15-minute buckets from the quarter-hour
table, hour buckets from the hourly one, day buckets from the daily one); the bucket still open and the buckets
from the first span the ingest queued for the key and has not rolled up yet (``rollup_dirty``) are computed from
the readings by the rollup's SQL function, the computation the rollups store. When the reporting time zone is not
the one the rollups were built in, every bucket comes from the readings.

A rollup row has three sorts of columns: sums (seconds-weighted totals and counts, added over the bucket), ends
(the state at the bucket's end: a day whose last hour has no row ends unknown, 0) and minima (a day with an hour
without a row had a moment with nothing known, 0). A bucket without a row has nothing known: all 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from stadtpuls.schema import SILENT_FACTOR

__all__ = ["LINE_LOAD", "PARKING_LOT", "WIDTHS", "Rollup", "history"]

WIDTHS = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
#: the rollup table of each bucket, by suffix
TABLES = {"15min": "_15min", "hour": "_hourly", "day": "_daily"}


@dataclass(frozen=True)
class Rollup:
    kind: str  # rollup_dirty.kind and the tables' prefix: {kind}_15min, {kind}_hourly, {kind}_daily
    key: str  # the key column (lot_id, line_id)
    function: str  # the SQL function computing buckets from the readings
    sums: tuple[str, ...]
    ends: tuple[str, ...]
    minima: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.sums + self.ends + self.minima


PARKING_LOT = Rollup(
    "parking_lot", "lot_id", "parking_occupancy", ("occupied_s", "free_s"), ("occupied_end", "free_end"), ("free_min",)
)
LINE_LOAD = Rollup(
    "line_load", "line_id", "line_load", ("on_board_s", "pax_in", "pax_out"), ("on_board_end", "vehicles_end")
)


def _raw_query(r: Rollup) -> sql.Composed:
    cols = sql.SQL(", ").join(sql.SQL("coalesce(o.{0}, 0) AS {0}").format(sql.Identifier(c)) for c in r.columns)
    return sql.SQL(  # computed once, then joined to the buckets
        "WITH o AS MATERIALIZED ("
        " SELECT * FROM {fn}(ARRAY[%(key)s::text], %(start)s, %(end)s, %(width)s, %(tz)s, %(factor)s, %(now)s))"
        " SELECT b.bucket AS start, least(b.bucket_end, %(now)s) AS end, {cols}"
        " FROM rollup_buckets(%(start)s, least(%(end)s, %(now)s), %(width)s, %(tz)s) b"
        " LEFT JOIN o ON o.bucket = b.bucket ORDER BY 1"
    ).format(cols=cols, fn=sql.Identifier(r.function))


def _rollup_query(r: Rollup, bucket: str) -> sql.Composed:
    parts = [sql.SQL("coalesce(r.{0}, 0) AS {0}").format(sql.Identifier(c)) for c in r.sums]
    if bucket == "day":  # a day's end and minimum hold only if its last hour, or every hour, has a row
        whole_last_hour = sql.SQL("r.last_hour + interval '1 hour' >= b.bucket_end")
        every_hour = sql.SQL("r.hours * 3600 >= extract(epoch FROM b.bucket_end - b.bucket)")
        parts += [
            sql.SQL("CASE WHEN {} THEN r.{} ELSE 0 END AS {}").format(cond, sql.Identifier(c), sql.Identifier(c))
            for cond, cols in ((whole_last_hour, r.ends), (every_hour, r.minima))
            for c in cols
        ]
    else:
        parts += [sql.SQL("coalesce(r.{0}, 0) AS {0}").format(sql.Identifier(c)) for c in r.ends + r.minima]
    return sql.SQL(
        "SELECT b.bucket AS start, b.bucket_end AS end, {cols}"
        " FROM rollup_buckets(%(start)s, %(end)s, %(width)s, %(tz)s) b"
        " LEFT JOIN (SELECT * FROM {table} WHERE {key} = %(key)s AND bucket >= %(start)s AND bucket < %(end)s) r"
        " ON r.bucket = b.bucket ORDER BY 1"
    ).format(cols=sql.SQL(", ").join(parts), table=sql.Identifier(r.kind + TABLES[bucket]), key=sql.Identifier(r.key))


async def _fetch(conn: AsyncConnection, query: sql.Composed, args: dict[str, Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row, binary=True)  # thousands of rows: binary values parse faster
    await cur.execute(query, args)
    return list(await cur.fetchall())


def _merge_into(row: dict[str, Any], earlier: list[dict[str, Any]], rollup: Rollup) -> None:
    """Add the ``earlier`` pieces of ``row``'s bucket (its hours before ``row`` starts) to ``row``."""
    for c in rollup.sums:
        row[c] += sum(e[c] for e in earlier)
    for c in rollup.minima:
        row[c] = min([row[c], *(e[c] for e in earlier)])


async def history(
    conn: AsyncConnection,
    rollup: Rollup,
    *,
    key: str,
    start: datetime,
    end: datetime,
    bucket: Literal["15min", "hour", "day"],
    tz: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The buckets covering ``[start, end)`` up to ``now``, in time order: ``start``, ``end`` (now for the open
    bucket) and the rollup's columns. The day still open is its rolled-up hours plus the open hour's readings."""
    width, hour = WIDTHS[bucket], WIDTHS["hour"]
    cur = await conn.execute(
        """SELECT rollup_floor(%(start)s, %(w)s, %(tz)s), raw_from, rollup_floor(raw_from, %(w)s, %(tz)s),
                  rollup_timezone()
           FROM (SELECT rollup_floor(least(%(open)s, (SELECT min(first) FROM rollup_dirty
                                                      WHERE kind = %(kind)s AND key = %(key)s)), %(h)s, %(tz)s)
                 AS raw_from) r""",
        {"start": start, "open": min(end, now), "w": width, "h": hour, "tz": tz, "kind": rollup.kind, "key": key},
    )
    row = await cur.fetchone()
    assert row is not None
    start, raw_from, closed_to, rollup_tz = row  # rolled up: before raw_from; whole buckets: before closed_to
    args: dict[str, Any] = {"key": key, "end": end, "width": width, "tz": tz, "factor": SILENT_FACTOR, "now": now}
    if rollup_tz != tz or raw_from <= start:
        return [r for r in await _fetch(conn, _raw_query(rollup), {**args, "start": start}) if r["end"] > r["start"]]
    rows = await _fetch(conn, _rollup_query(rollup, bucket), {**args, "start": start, "end": closed_to})
    hours: list[dict[str, Any]] = []
    if max(closed_to, start) < raw_from:  # the open day's hours that are rolled up
        hours = await _fetch(
            conn,
            _rollup_query(rollup, "hour"),
            {**args, "start": max(closed_to, start), "end": raw_from, "width": hour},
        )
    if raw_from < min(end, now):
        raw = await _fetch(conn, _raw_query(rollup), {**args, "start": raw_from})
        if raw and hours:
            _merge_into(raw[0], hours, rollup)
            raw[0]["start"] = hours[0]["start"]
        rows += raw
    return [r for r in rows if r["end"] > r["start"]]
