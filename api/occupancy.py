"""History buckets aligned in the reporting time zone (days are local days, 23 or 25 hours long around DST
changes; 15-minute and hour buckets start at local quarter hours and hours). The database computes the same
buckets (``rollup_buckets``, migration 0008); the tests check one against the other. A history's answer goes out
through :func:`history_json`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import orjson
from fastapi.responses import Response

__all__ = ["BUCKETS", "Bucket", "bucket_edges", "history_json"]

Bucket = Literal["15min", "hour", "day"]
BUCKETS: dict[str, timedelta] = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def bucket_edges(start: datetime, end: datetime, bucket: Bucket, tz: str) -> list[datetime]:
    """Bucket boundaries covering ``[start, end)``, the first floored to a local bucket boundary."""
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    edges: list[datetime] = []
    if bucket == "day":
        d = local.date()
        while True:
            edge = datetime(d.year, d.month, d.day, tzinfo=zone)
            edges.append(edge)
            if edge >= end:
                break
            d += timedelta(days=1)
        return edges
    step = BUCKETS[bucket]
    if bucket == "hour":
        first = local.replace(minute=0, second=0, microsecond=0)
    else:
        first = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    t = first.astimezone(ZoneInfo("UTC"))
    while True:
        edges.append(t.astimezone(zone))
        if t >= end:
            break
        t += step
    return edges


def history_json(head: dict[str, Any], items: bytes, count: int) -> Response:
    """A history's body: ``head``'s fields (written by orjson), then ``data``, the buckets' JSON objects ``items``
    (up to 40,000; a lot's and a line's written by the database, migration 0021), and their ``count``. The route's
    ``response_model`` documents it; validating thousands of buckets once more would cost more than the query."""
    return Response(
        b"".join((orjson.dumps(head)[:-1], b',"data":[', items, b'],"count":', str(count).encode(), b"}")),
        media_type="application/json",
    )
