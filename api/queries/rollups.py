"""History from the rollups of migrations 0008 and 0019, for any rolled-up quantity (a lot's occupancy, a line's
load): as rows (:func:`history`), or as the JSON text of its buckets built by the database (:func:`history_json`,
migration 0021), so a long answer is one value passed on to the response.

Buckets that have ended come from the coarsest rollup that answers them (15-minute buckets from the quarter-hour
table, hour buckets from the hourly one, day buckets from the daily one); the bucket still open and the buckets
from the first span the ingest queued for the key and has not rolled up yet (``rollup_dirty``) are computed from
the readings by the rollup's SQL function, the computation the rollups store. When the reporting time zone is not
the one the rollups were built in, every bucket comes from the readings.

A rollup row has three sorts of columns: sums (seconds-weighted totals and counts, added over the bucket), ends
(the state at the bucket's end: a day whose last hour has no row ends unknown, 0) and minima (a day with an hour
without a row had a moment with nothing known, 0). A bucket without a row has nothing known: all 0.

Both answers run one query for the pieces' bounds, then one for every piece, merged and in time order. The JSON
answer of a week or more at 15-minute or hour buckets reads its whole closed days as kept text instead
(:mod:`.fragments`, migration 0024).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from stadtpuls.schema import SILENT_FACTOR

from . import fragments

__all__ = ["LINE_LOAD", "PARKING_LOT", "WIDTHS", "Rollup", "Span", "history", "history_json"]

WIDTHS = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
#: the rollup table of each bucket, by suffix
TABLES = {"15min": "_15min", "hour": "_hourly", "day": "_daily"}


@dataclass(frozen=True)
class Rollup:
    kind: str  # rollup_dirty.kind and the tables' prefix: {kind}_15min, {kind}_hourly, {kind}_daily
    key: str  # the key column (lot_id, line_id)
    function: str  # the SQL function computing buckets from the readings
    sums: tuple[str, ...]  # seconds-weighted totals (double precision)
    ends: tuple[str, ...]
    minima: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()  # totals of whole numbers (bigint)

    @property
    def additive(self) -> tuple[str, ...]:
        return self.sums + self.counts

    @property
    def columns(self) -> tuple[str, ...]:
        return self.additive + self.ends + self.minima


PARKING_LOT = Rollup(
    "parking_lot", "lot_id", "parking_occupancy", ("occupied_s", "free_s"), ("occupied_end", "free_end"), ("free_min",)
)
LINE_LOAD = Rollup(
    "line_load", "line_id", "line_load", ("on_board_s",), ("on_board_end", "vehicles_end"), counts=("pax_in", "pax_out")
)


def _raw_query(r: Rollup, lo: str) -> sql.Composed:
    """The buckets from ``%(lo)s`` (floored to a bucket) up to ``%(end)s`` and now, computed from the readings."""
    cols = sql.SQL(", ").join(sql.SQL("coalesce(o.{0}, 0) AS {0}").format(sql.Identifier(c)) for c in r.columns)
    return sql.SQL(  # computed once, then joined to the buckets
        "WITH o AS MATERIALIZED ("
        " SELECT * FROM {fn}(ARRAY[%(key)s::text], {lo}, %(end)s, %(width)s, %(tz)s, %(factor)s, %(now)s))"
        ' SELECT b.bucket AS start, least(b.bucket_end, %(now)s) AS "end", {cols}'
        " FROM rollup_buckets({lo}, least(%(end)s, %(now)s), %(width)s, %(tz)s) b"
        " LEFT JOIN o ON o.bucket = b.bucket"
    ).format(cols=cols, fn=sql.Identifier(r.function), lo=sql.Placeholder(lo))


def _rollup_query(r: Rollup, bucket: str, lo: str, hi: str, width: str = "width") -> sql.Composed:
    """The buckets of ``[%(lo)s, %(hi)s)`` from the rollup table of ``bucket``."""
    parts = [sql.SQL("coalesce(r.{0}, 0) AS {0}").format(sql.Identifier(c)) for c in r.additive]
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
        'SELECT b.bucket AS start, b.bucket_end AS "end", {cols}'
        " FROM rollup_buckets({lo}, {hi}, {width}, %(tz)s) b"
        " LEFT JOIN (SELECT * FROM {table} WHERE {key} = %(key)s AND bucket >= {lo} AND bucket < {hi}) r"
        " ON r.bucket = b.bucket"
    ).format(
        cols=sql.SQL(", ").join(parts),
        table=sql.Identifier(r.kind + TABLES[bucket]),
        key=sql.Identifier(r.key),
        lo=sql.Placeholder(lo),
        hi=sql.Placeholder(hi),
        width=sql.Placeholder(width),
    )


def _open_day_query(r: Rollup) -> sql.Composed:
    """The day buckets from the readings (from ``%(raw_from)s``), the first (the day still open) with the day's
    rolled-up hours before ``%(raw_from)s`` added in: sums add (in time order), minima take the least."""

    def merged(c: str, expr: str) -> sql.Composed:
        return sql.SQL("CASE WHEN r.start = %(closed_to)s THEN {} ELSE r.{} END AS {}").format(
            sql.SQL(expr).format(sql.Identifier(c)), sql.Identifier(c), sql.Identifier(c)
        )

    cols = [
        *(merged(c, "r.{0} + h.{0}") for c in r.sums),
        *(merged(c, "(r.{0} + h.{0})::bigint") for c in r.counts),
        *(sql.SQL("r.{}").format(sql.Identifier(c)) for c in r.ends),
        *(merged(c, "least(r.{0}, h.{0})") for c in r.minima),
    ]
    hours = [
        *(sql.SQL("sum(x.{0} ORDER BY x.start) AS {0}").format(sql.Identifier(c)) for c in r.additive),
        *(sql.SQL("min(x.{0}) AS {0}").format(sql.Identifier(c)) for c in r.minima),
    ]
    return sql.SQL('SELECT r.start, r."end", {cols} FROM ({raw}) r, (SELECT {hours} FROM ({q}) x) h').format(
        cols=sql.SQL(", ").join(cols),
        raw=_raw_query(r, "raw_from"),
        hours=sql.SQL(", ").join(hours),
        q=_rollup_query(r, "hour", "hours_from", "raw_from", width="hour"),
    )


@dataclass(frozen=True)
class Span:
    """What a history answers: ``key``'s buckets of ``bucket`` covering ``[start, end)`` up to ``now``, in ``tz``."""

    key: str
    start: datetime
    end: datetime
    bucket: Literal["15min", "hour", "day"]
    tz: str
    now: datetime


@dataclass(frozen=True)
class _Query:
    """A history's buckets as one query (columns ``start``, ``end`` and the rollup's), its arguments (among them
    the pieces' bounds ``start``, ``closed_to``, ``raw_from``) and whether every bucket is from the readings."""

    text: sql.Composable
    args: dict[str, Any]
    from_readings: bool


async def _query(conn: AsyncConnection, rollup: Rollup, span: Span) -> _Query:
    """Where the pieces start and end (one query), then the pieces: whole buckets from the rollup before
    ``closed_to``, the open day's rolled-up hours before ``raw_from``, the readings from ``raw_from`` on; every
    bucket from the readings when the rollups are bucketed in another time zone or nothing before the first bucket
    is rolled up."""
    key, start, end, bucket, tz, now = span.key, span.start, span.end, span.bucket, span.tz, span.now
    width, hour = WIDTHS[bucket], WIDTHS["hour"]
    cur = await conn.execute(
        """SELECT rollup_floor(%(start)s, %(w)s, %(tz)s), raw_from, rollup_floor(raw_from, %(w)s, %(tz)s),
                  rollup_timezone()
           FROM (SELECT rollup_floor(least(%(open)s, (SELECT min(first) FROM rollup_dirty
                                                      WHERE kind = %(kind)s AND key = %(key)s)), %(h)s, %(tz)s)
                 AS raw_from) r""",
        {
            "start": start,
            "open": min(end, now),
            "w": width,
            "h": hour,
            "tz": tz,
            "kind": rollup.kind,
            "key": key,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    start, raw_from, closed_to, rollup_tz = row  # rolled up: before raw_from; whole buckets: before closed_to
    args: dict[str, Any] = {
        "key": key,
        "end": end,
        "width": width,
        "hour": hour,
        "tz": tz,
        "factor": SILENT_FACTOR,
        "now": now,
        "start": start,
        "raw_from": raw_from,
        "closed_to": closed_to,
        "hours_from": max(closed_to, start),
    }
    if rollup_tz != tz or raw_from <= start:
        return _Query(_raw_query(rollup, "start"), args, True)
    return _Query(_pieces(rollup, span, args), args, False)


def _pieces(rollup: Rollup, span: Span, args: dict[str, Any], kept: bool = False) -> sql.Composed:
    """The pieces of :func:`_query`; with ``kept``, none of the rolled-up buckets in ``[%(kept_lo)s,
    %(kept_hi)s)`` (whole days read as kept text)."""
    if kept:
        parts = [
            _rollup_query(rollup, span.bucket, "start", "kept_lo"),
            _rollup_query(rollup, span.bucket, "kept_hi", "closed_to"),
        ]
    else:
        parts = [_rollup_query(rollup, span.bucket, "start", "closed_to")]
    raw_from, closed_to = args["raw_from"], args["closed_to"]
    if raw_from < min(span.end, span.now):
        parts.append(
            _open_day_query(rollup) if max(closed_to, args["start"]) < raw_from else _raw_query(rollup, "raw_from")
        )
    return sql.SQL(" UNION ALL ").join(sql.SQL("({})").format(p) for p in parts)


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
    q = await _query(conn, rollup, Span(key, start, end, bucket, tz, now))
    cur = conn.cursor(row_factory=dict_row, binary=True)  # thousands of rows: binary values parse faster
    await cur.execute(sql.SQL('SELECT * FROM ({}) u WHERE u."end" > u.start ORDER BY u.start').format(q.text), q.args)
    return list(await cur.fetchall())


#: the buckets whose closed days are kept as JSON text (``history_fragments``, migration 0024); a year of days is
#: 365 buckets, cheap to write each time (and a continuous aggregate on TimescaleDB, which no refresh here sees)
KEPT_BUCKETS = ("15min", "hour")


def _json_buckets(rows: sql.Composable) -> sql.Composed:
    """``rows`` (a history's pieces) as ``b``: the rollup's columns and ``start``, ``end``, ``start_json``,
    ``end_json``, ``seconds``, after the statement's time zone is set to ``%(tz)s`` (for its transaction: set
    before any bucket is read, the buckets' scan refers to it), in which json_time writes the times.

    Each value is computed once (``OFFSET 0`` keeps the subqueries from being merged into the row's expression),
    a bucket's end written as the next bucket's start where they meet, and a length in whole seconds (every one
    but the open bucket's, which ends now) from the ends' epochs, exactly."""
    return sql.SQL(
        "(SELECT set_config('TimeZone', %(tz)s, true) AS zone) z, LATERAL (SELECT i.*,"
        ' CASE WHEN i."end" = %(now)s THEN %(now_json)s'
        '      WHEN lead(i.start) OVER w = i."end" THEN lead(i.start_json) OVER w'
        '      ELSE json_time(i."end") END AS end_json,'
        ' CASE WHEN i."end" = %(now)s THEN extract(epoch FROM i."end" - i.start)::float8'
        "      ELSE date_part('epoch', i.\"end\") - date_part('epoch', i.start) END AS seconds"
        " FROM (SELECT h.*, json_time(h.start) AS start_json"
        '       FROM ({rows}) h WHERE h."end" > h.start AND z.zone IS NOT NULL OFFSET 0) i'
        " WINDOW w AS (ORDER BY i.start) OFFSET 0) b"
    ).format(rows=rows)


async def history_json(
    conn: AsyncConnection, rollup: Rollup, row: sql.Composable, span: Span, **params: Any
) -> tuple[bytes, int]:
    """The buckets of :func:`history` as the JSON text of their array's items (without the brackets) and their
    number. ``row`` is a bucket's JSON object as an SQL text expression over ``b`` (the rollup's columns, and
    ``b.start_json``, ``b.end_json``, ``b.seconds``: the bucket's length) and ``params``; times in ``span.tz``.

    15-minute and hour buckets of whole days that have ended and are rolled up are read as the days' kept text
    (migration 0024), written by the first answer that needs a day; the rest (the first and last day's part, the
    open day, every bucket of a day answer) is written by one statement, which joins them."""
    q = await _query(conn, rollup, span)
    # the open bucket ends now, with a fraction of a second: written as orjson writes it
    now_json = orjson.dumps(span.now.astimezone(ZoneInfo(span.tz)), option=orjson.OPT_UTC_Z).decode()
    args = {**q.args, **params, "now_json": now_json}
    before = None if conn.autocommit else conn.info.parameter_status("TimeZone")
    found = None
    if span.bucket in KEPT_BUCKETS and not q.from_readings and args["closed_to"] - args["start"] >= fragments.MIN_SPAN:
        kept_lo, kept_hi = await fragments.whole_days(conn, args["start"], args["closed_to"], span.tz)
        args |= {
            "kind": rollup.kind,
            "fingerprint": fragments.fingerprint(row, params),
            "kept_lo": kept_lo,
            "kept_hi": kept_hi,
        }
        found = await _joined(conn, rollup, row, span, args)
        texts = sql.SQL("SELECT b.start, {row} AS text FROM {b}").format(
            row=row, b=_json_buckets(_rollup_query(rollup, span.bucket, "missing_lo", "missing_hi"))
        )
        if found is None and await fragments.keep_missing(conn, texts, args):
            found = await _joined(conn, rollup, row, span, args)
    if found is None:
        cur = await conn.cursor(binary=True).execute(
            sql.SQL(
                "SELECT convert_to(coalesce(string_agg({row}, ',' ORDER BY b.start), ''), 'UTF8'), count(*)::int"
                " FROM {b}"
            ).format(row=row, b=_json_buckets(q.text)),
            args,
        )
        found = await cur.fetchone()
    if before is not None:  # in a caller's transaction: the session's zone back for the rest of it
        await conn.execute("SELECT set_config('TimeZone', %s, true)", (before,))
    assert found is not None
    return found[0], found[1]


async def _joined(
    conn: AsyncConnection, rollup: Rollup, row: sql.Composable, span: Span, args: dict[str, Any]
) -> tuple[bytes, int] | None:
    """The answer from the kept days of ``[kept_lo, kept_hi)`` and the buckets around them, or None if some of
    those days are not kept."""
    cur = await conn.cursor(binary=True).execute(
        sql.SQL(
            "SELECT convert_to(coalesce(string_agg(x.text, ',' ORDER BY x.start), ''), 'UTF8'), sum(x.n)::int,"
            " count(*) FILTER (WHERE x.kept) = {days}"
            " FROM (SELECT b.start, {row} AS text, 1 AS n, false AS kept FROM {b}"
            "       UNION ALL SELECT *, true FROM ({kept}) k) x"
        ).format(
            row=row,
            b=_json_buckets(_pieces(rollup, span, args, kept=True)),
            kept=fragments.KEPT_TEXTS,
            days=fragments.DAYS,
        ),
        args,
    )
    found = await cur.fetchone()
    assert found is not None
    return (found[0], found[1]) if found[2] else None
