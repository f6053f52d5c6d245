"""History answers written by the database (migration 0021) against the bodies Python wrote before it
(``history_reference``), byte for byte: a lot's occupancy and a line's load, for random ranges, buckets, instants
and time zones around DST changes, with late readings queued and not rolled up yet; and the number writers
against orjson on Python's values."""

from __future__ import annotations

import asyncio
import math
import random
import struct
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import history_reference as ref
import orjson
import psycopg
import pytest

from stadtpuls.api.occupancy import history_json
from stadtpuls.api.queries import buses, parking, rollups
from stadtpuls.migrate import migrate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stadtpuls"))
from test_rollups import SPACES, Reading, _insert_raw, _random_readings, _register  # noqa: E402
from test_rollups_fine import _refresh_all  # noqa: E402

#: (zone the database is migrated in, a day of a DST change there)
ZONES = [
    ("Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 8, tzinfo=UTC)),
    ("Europe/London", datetime(2026, 3, 29, tzinfo=UTC)),  # offset 0 in winter: "Z"
]
#: zones a query may ask for besides the database's (the buckets then come from the readings)
OTHER_ZONES = ("UTC", "Asia/Kolkata", "Europe/Berlin", "Australia/Sydney")
LINE = {"line-1": 3}


def _python_values(rng: random.Random, n: int) -> list[float]:
    """Floats of every kind a history meets and some it does not: averages of whole and fractional seconds
    (many exactly or nearly halfway between hundredths), float4 fills, tiny and large magnitudes, signs, zeros."""
    out: list[float] = [0.0, -0.0, 0.125, 0.375, 2.675, 1.005, 0.005, 0.015, -0.125, -0.003, 1e-5, 1e-4, 1e15, 9.5e15]
    while len(out) < n:
        kind = rng.randrange(6)
        if kind == 0:
            out.append(rng.randrange(10**7) / rng.choice((900, 3600, 82800, 86400, 90000, 8, 200)))
        elif kind == 1:
            out.append(rng.uniform(0, 500) * rng.choice((1, 1, -1)))
        elif kind == 2:
            out.append(struct.unpack("f", struct.pack("f", rng.uniform(0, 100)))[0])  # a real, widened
        elif kind == 3:
            out.append(10 ** rng.uniform(-9, 15.9) * rng.choice((1, -1)))
        elif kind == 4:
            out.append(rng.randrange(10**6) / 1000 + rng.choice((0.005, 0.125, 0.0049999999, 0.0050000001)))
        else:
            bits = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
            if math.isfinite(bits) and abs(bits) < 1e16:
                out.append(bits)
    return out


def test_numbers_are_written_as_orjson_writes_python_values(clean_db: str) -> None:
    values = [*_python_values(random.Random(7), 20_000), math.nan, math.inf, -math.inf]
    with psycopg.connect(clean_db) as conn:
        got = conn.execute(
            "SELECT json_number(x), json_round2(x), json_number(NULL), json_round2(NULL)"
            " FROM unnest(%s::float8[]) WITH ORDINALITY AS u(x, k) ORDER BY k",
            (values,),
        ).fetchall()
    for x, (number, rounded, null_number, null_rounded) in zip(values, got, strict=True):
        assert number == orjson.dumps(x).decode(), repr(x)
        assert rounded == orjson.dumps(round(x, 2) if math.isfinite(x) else x).decode(), repr(x)
        assert (null_number, null_rounded) == ("null", "null")


def _seed(url: str, rng: random.Random, day: datetime) -> list[Reading]:
    lots = _random_readings(rng, day, SPACES, "parking")
    line = _random_readings(rng, day, LINE, "passengers")
    devs = {**_register(url, lots, "parking"), **_register(url, line, "passengers")}
    first = min(r.time for r in lots + line) - timedelta(hours=1)
    last = max(r.time for r in lots + line) + timedelta(hours=1)
    with psycopg.connect(url) as conn:
        _insert_raw(conn, lots, devs, "parking")
        _insert_raw(conn, line, devs, "passengers")
        _refresh_all(conn, "parking_lot", list(SPACES), first, last)
        _refresh_all(conn, "line_load", list(LINE), first, last)
    return lots


def _queue_late(url: str, rng: random.Random, start: datetime, now: datetime, lots: list[Reading]) -> None:
    """A late lot reading, stored and queued as the writer leaves it, not rolled up."""
    at = start + (now - start) * rng.uniform(0.1, 0.9)
    space = next(r for r in lots if r.group == "lot-a")
    with psycopg.connect(url) as conn:
        dev = conn.execute("SELECT dev_eui FROM devices WHERE site_id = %s", (space.member,)).fetchone()
        assert dev is not None
        _insert_raw(conn, [Reading("lot-a", space.member, at, 1, space.interval)], {space.member: dev[0]}, "parking")
        conn.execute(
            "INSERT INTO rollup_dirty (kind, key, first, last) VALUES ('parking_lot', 'lot-a', %s, %s)", (at, at)
        )


async def _bodies(
    url: str, bucket: Any, start: datetime, end: datetime, tz: str, now: datetime, capacity: int, session_tz: str
) -> list[tuple[str, bytes, bytes]]:
    """(what, the Python-written body, the database-written one) for lot-a and the line."""
    span = {"start": start, "end": end, "bucket": bucket, "tz": tz, "now": now}
    out = []
    async with await psycopg.AsyncConnection.connect(
        url, autocommit=session_tz == "UTC", options=f"-c TimeZone={session_tz}"
    ) as conn:
        items, n = await rollups.history_json(
            conn, rollups.PARKING_LOT, parking.LOT_BUCKET_JSON, rollups.Span("lot-a", **span), capacity=capacity
        )
        head: dict[str, Any] = {"lot_id": "lot-a", "bucket": bucket, "timezone": tz, "capacity": capacity}
        out.append(("lot", await ref.lot_body(conn, "lot-a", capacity, **span), history_json(head, items, n).body))
        items, n = await rollups.history_json(
            conn, rollups.LINE_LOAD, buses.LINE_BUCKET_JSON, rollups.Span("line-1", **span)
        )
        head = {"line_id": "line-1", "bucket": bucket, "timezone": tz}
        out.append(("line", await ref.line_body(conn, "line-1", **span), history_json(head, items, n).body))
        assert conn.info.parameter_status("TimeZone") == session_tz  # the session's zone is left as it was
    return out


@pytest.mark.parametrize("zone", range(len(ZONES)))
def test_database_written_history_equals_the_python_written_body(new_database: Callable[[], str], zone: int) -> None:
    db_tz, day = ZONES[zone]
    url = new_database()
    migrate(url, tz=db_tz)  # the rollups are bucketed in this zone
    rng = random.Random(60 + zone)
    lots = _seed(url, rng, day)
    compared = 0
    for k in range(15):
        bucket = ("15min", "hour", "day")[k % 3]
        tz = db_tz if k % 4 else rng.choice(OTHER_ZONES)
        start = day - timedelta(days=2) + timedelta(seconds=rng.randrange(4 * 86400))
        end = start + timedelta(seconds=rng.randrange(3600, 3 * 86400))
        now = start + (end - start) * rng.uniform(0.3, 1.3)
        if k % 5 == 4:
            _queue_late(url, rng, start, now, lots)
        session_tz = "UTC" if k % 2 else "America/Sao_Paulo"
        capacity = rng.randrange(0, 9)
        for what, python, database in asyncio.run(_bodies(url, bucket, start, end, tz, now, capacity, session_tz)):
            assert database == python, (what, bucket, tz, start, end, now)
            compared += len(orjson.loads(python)["data"])
        if k % 5 == 4:
            with psycopg.connect(url) as conn:
                conn.execute("SELECT rollups_refresh_pending()")
    assert compared > 500  # buckets with values compared, not only empty answers
