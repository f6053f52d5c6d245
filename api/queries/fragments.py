"""Kept days of a history's answer (migration 0024): the JSON text of a key's whole local days that have ended and
are rolled up, per bucket width, time zone and ``fingerprint`` (the bucket's JSON expression and its parameters).
An answer of many buckets reads them instead of writing every bucket; the days it finds missing it writes first.

1. the answer's whole days ``[%(kept_lo)s, %(kept_hi)s)`` (:func:`whole_days`), when its rolled-up buckets span
   :data:`MIN_SPAN` or more;
2. one statement writes the answer's other buckets and joins the kept days' text (:data:`KEPT_TEXTS`), counting
   them against the days (:data:`DAYS`);
3. when some are missing, :func:`keep_missing` writes them, under the key's refresh lock taken shared (the
   rollup refresh forgets the days it changes under the same lock, taken exclusive), then step 2 again.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection, sql

__all__ = ["DAYS", "KEPT_TEXTS", "MIN_SPAN", "fingerprint", "keep_missing", "whole_days"]

#: answers whose rolled-up buckets span less write every bucket (a week of hours, 672 quarters: as fast either
#: way, without the statements that find the whole days)
MIN_SPAN = timedelta(days=7)


async def whole_days(conn: AsyncConnection, lo: datetime, hi: datetime, tz: str) -> tuple[datetime, datetime]:
    """The whole local days of ``tz`` in ``[lo, hi)``: the first local midnight from ``lo`` on and the last up to
    ``hi`` (the same both without one), as ``rollup_floor`` and ``rollup_bucket_end`` (migration 0008) cut days."""
    cur = await conn.execute(
        "SELECT least(d.first_day, %(hi)s),"
        " greatest(least(d.first_day, %(hi)s), rollup_floor(%(hi)s, interval '1 day', %(tz)s))"
        " FROM (SELECT CASE WHEN rollup_floor(%(lo)s, interval '1 day', %(tz)s) = %(lo)s THEN %(lo)s"
        "       ELSE rollup_bucket_end(rollup_floor(%(lo)s, interval '1 day', %(tz)s), interval '1 day', %(tz)s)"
        "       END AS first_day) d",
        {"lo": lo, "hi": hi, "tz": tz},
    )
    found = await cur.fetchone()
    assert found is not None
    return found[0], found[1]


_KEPT = sql.SQL(
    " FROM history_fragments WHERE kind = %(kind)s AND key = %(key)s AND width = %(width)s AND tz = %(tz)s"
    " AND fingerprint = %(fingerprint)s"
)

#: the kept days of ``[%(kept_lo)s, %(kept_hi)s)``: ``start`` (the day), ``text``, ``n`` (its buckets)
KEPT_TEXTS = sql.SQL(
    "SELECT day AS start, json AS text, buckets AS n {} AND day >= %(kept_lo)s AND day < %(kept_hi)s"
).format(_KEPT)

#: the number of days in ``[%(kept_lo)s, %(kept_hi)s)``
DAYS = sql.SQL("(SELECT count(*)::int FROM rollup_buckets(%(kept_lo)s, %(kept_hi)s, interval '1 day', %(tz)s))")


def fingerprint(expression: sql.Composable, params: dict[str, Any]) -> str:
    """What a kept day's text depends on besides the rollups: the bucket's JSON expression and its parameters."""
    text = repr(expression).encode() + orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:32]


async def keep_missing(conn: AsyncConnection, texts: sql.Composable, args: dict[str, Any]) -> bool:
    """Write the days of ``[%(kept_lo)s, %(kept_hi)s)`` not kept yet, from ``texts`` (``start``, ``text``: each
    bucket's JSON object in ``[%(missing_lo)s, %(missing_hi)s)``); ``args`` has ``kind``, ``key``, ``width``,
    ``tz`` and ``fingerprint``. False when the key's refresh holds its lock, or the connection may not write (a
    read replica, a role without the grant): the caller then writes its answer whole.

    Only days that end before the key's first span queued for a refresh are written, and in a statement that
    starts once the lock is held: a refresh either committed before it (its rollups are read) or waits, then
    forgets what it changes."""
    cur = await conn.execute(
        sql.SQL(
            "SELECT min(d.bucket) FILTER (WHERE f.day IS NULL), max(d.bucket_end) FILTER (WHERE f.day IS NULL)"
            " FROM rollup_buckets(%(kept_lo)s, %(kept_hi)s, interval '1 day', %(tz)s) d"
            " LEFT JOIN (SELECT day {kept} AND day >= %(kept_lo)s AND day < %(kept_hi)s) f ON f.day = d.bucket"
        ).format(kept=_KEPT),
        args,
    )
    missing = await cur.fetchone()
    if missing is None or missing[0] is None:
        return True
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT pg_try_advisory_xact_lock_shared(hashtext(%s), hashtext(%s))", (args["kind"], args["key"])
            )
            locked = await cur.fetchone()
            if not (locked and locked[0]):
                return False
            await conn.execute(
                sql.SQL(
                    "INSERT INTO history_fragments (kind, key, width, tz, fingerprint, day, buckets, json)"
                    " SELECT %(kind)s, %(key)s, %(width)s, %(tz)s, %(fingerprint)s, d.bucket, count(x.text),"
                    " coalesce(string_agg(x.text, ',' ORDER BY x.start), '')"
                    " FROM rollup_buckets(%(missing_lo)s, %(missing_hi)s, interval '1 day', %(tz)s) d"
                    " LEFT JOIN ({texts}) x ON x.start >= d.bucket AND x.start < d.bucket_end"
                    " WHERE NOT EXISTS (SELECT 1 {kept} AND day = d.bucket)"
                    " GROUP BY d.bucket, d.bucket_end"
                    # seen from under the lock
                    " HAVING d.bucket_end <= (SELECT coalesce(min(first), 'infinity') FROM rollup_dirty"
                    "                         WHERE kind = %(kind)s AND key = %(key)s)"
                    " ON CONFLICT DO NOTHING"
                ).format(texts=texts, kept=_KEPT),
                {**args, "missing_lo": missing[0], "missing_hi": missing[1]},
            )
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege):
        return False
    return True
