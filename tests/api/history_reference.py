"""The history answers as the API wrote them before migration 0021: the pieces fetched as rows one query each, the
open day merged in Python, every bucket rounded and its times converted in Python, the body written by orjson.
The tests compare the database-written answers with these, byte for byte."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from stadtpuls.api.queries import rollups

Bucket = Literal["15min", "hour", "day"]


async def _fetch(conn: AsyncConnection, query: sql.Composable, args: dict[str, Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row, binary=True)
    await cur.execute(sql.SQL("{} ORDER BY 1").format(query), args)
    return list(await cur.fetchall())


async def buckets(
    conn: AsyncConnection,
    r: rollups.Rollup,
    *,
    key: str,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    tz: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """The buckets, each piece its own query, the open day's rolled-up hours added to its first raw row here."""
    q = await rollups._query(conn, r, rollups.Span(key, start, end, bucket, tz, now))
    a = q.args
    if q.from_readings:
        return [b for b in await _fetch(conn, rollups._raw_query(r, "start"), a) if b["end"] > b["start"]]
    rows = await _fetch(conn, rollups._rollup_query(r, bucket, "start", "closed_to"), a)
    hours: list[dict[str, Any]] = []
    if a["hours_from"] < a["raw_from"]:
        hours = await _fetch(conn, rollups._rollup_query(r, "hour", "hours_from", "raw_from", width="hour"), a)
    if a["raw_from"] < min(end, now):
        raw = await _fetch(conn, rollups._raw_query(r, "raw_from"), a)
        if raw and hours:
            for c in r.additive:
                raw[0][c] += sum(e[c] for e in hours)
            for c in r.minima:
                raw[0][c] = min([raw[0][c], *(e[c] for e in hours)])
            raw[0]["start"] = hours[0]["start"]
        rows += raw
    return [b for b in rows if b["end"] > b["start"]]


def _body(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


async def lot_body(
    conn: AsyncConnection,
    lot_id: str,
    capacity: int,
    *,
    start: datetime,
    end: datetime,
    bucket: Bucket,
    tz: str,
    now: datetime,
) -> bytes:
    found = await buckets(conn, rollups.PARKING_LOT, key=lot_id, start=start, end=end, bucket=bucket, tz=tz, now=now)
    zone = ZoneInfo(tz)
    rows = []
    for b in found:
        seconds = (b["end"] - b["start"]).total_seconds()
        rows.append(
            {
                "start": b["start"].astimezone(zone),
                "end": b["end"].astimezone(zone),
                "occupied": b["occupied_end"],
                "free": b["free_end"],
                "unknown": max(capacity - b["occupied_end"] - b["free_end"], 0),
                "occupied_avg": round(b["occupied_s"] / seconds, 2),
                "free_avg": round(b["free_s"] / seconds, 2),
                "free_min": b["free_min"],
            }
        )
    head = {"lot_id": lot_id, "bucket": bucket, "timezone": tz, "capacity": capacity}
    return _body({**head, "data": rows, "count": len(rows)})


async def line_body(
    conn: AsyncConnection, line_id: str, *, start: datetime, end: datetime, bucket: Bucket, tz: str, now: datetime
) -> bytes:
    found = await buckets(conn, rollups.LINE_LOAD, key=line_id, start=start, end=end, bucket=bucket, tz=tz, now=now)
    zone = ZoneInfo(tz)
    rows = [
        {
            "start": b["start"].astimezone(zone),
            "end": b["end"].astimezone(zone),
            "on_board_avg": round(b["on_board_s"] / (b["end"] - b["start"]).total_seconds(), 2),
            "on_board": b["on_board_end"],
            "vehicles": b["vehicles_end"],
            "boardings": b["pax_in"],
            "alightings": b["pax_out"],
        }
        for b in found
    ]
    return _body({"line_id": line_id, "bucket": bucket, "timezone": tz, "data": rows, "count": len(rows)})
