"""Kept days of a history's answer (migration 0024): written by the first answer that needs them, read back by the
next, forgotten exactly where the rollup refresh changes the rollups (late and backfilled readings), and every
answer byte for byte the body Python wrote before 0021 (``history_reference``), on days of a DST change too."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from test_history_json import ZONES, _bodies, _seed, test_database_written_history_equals_the_python_written_body
from test_rollups import Reading, _insert_raw
from test_rollups_fine import BINS, _insert_levels, _random_levels, _register_bins

from stadtpuls.api.queries import fragments, waste
from stadtpuls.migrate import migrate

TZ = "Europe/Berlin"
DAY = datetime(2026, 10, 24, 22, tzinfo=UTC)  # local midnight of 2026-10-25, a day of 25 hours
START = DAY - timedelta(days=1, hours=17)  # 13:00 local: the first day is not whole
END = DAY + timedelta(days=2, hours=7)


@pytest.fixture(autouse=True)
def short_answers_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers of a day of rolled-up buckets or more read kept days (a week or more outside the tests)."""
    monkeypatch.setattr(fragments, "MIN_SPAN", timedelta(days=1))


@pytest.fixture
def seeded(new_database: Callable[[], str]) -> str:
    url = new_database()
    migrate(url, tz=TZ)
    _seed(url, random.Random(11), DAY)
    return url


def _answers(url: str, bucket: str, *, capacity: int = 4, now: datetime = END) -> dict[str, bytes]:
    """The lot's and the line's body, each asserted equal to the Python-written one."""
    out = {}
    for what, python, database in asyncio.run(_bodies(url, bucket, START, END, TZ, now, capacity, "UTC")):
        assert database == python, (what, bucket)
        out[what] = database
    return out


def _kept(url: str, kind: str = "parking_lot", key: str | None = None) -> dict[tuple[str, datetime], int]:
    """(width, local day) -> buckets of the kept days of ``kind`` (of one key)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT to_char(width, 'HH24:MI'), day, buckets FROM history_fragments"
            " WHERE kind = %s AND key = coalesce(%s, key)",
            (kind, key),
        ).fetchall()
    return {(w, d): n for w, d, n in rows}


@pytest.mark.parametrize(("bucket", "width", "per_hour"), [("15min", "00:15", 4), ("hour", "01:00", 1)])
def test_closed_days_are_kept_and_read_back(seeded: str, bucket: str, width: str, per_hour: int) -> None:
    first = _answers(seeded, bucket)
    # the whole days before the open one: 24 hours, the DST change's 25, 24; not the first (from 13:00)
    days = [DAY - timedelta(days=1), DAY, DAY + timedelta(hours=25)]
    assert _kept(seeded) == {(width, d): n * per_hour for d, n in zip(days, (24, 25, 24), strict=True)}
    assert {d for _, d in _kept(seeded, "line_load")} == set(days)
    assert _answers(seeded, bucket) == first
    with psycopg.connect(seeded) as conn:  # the answer is the kept text: altered, the answer shows it
        conn.execute(
            "UPDATE history_fragments SET json = json || ',{}' WHERE kind = 'parking_lot' AND day = %s", (DAY,)
        )
    altered = asyncio.run(_bodies(seeded, bucket, START, END, TZ, END, 4, "UTC"))[0][2]
    assert altered != first["lot"] and altered.replace(b",{}", b"", 1) == first["lot"]


def test_day_buckets_and_other_capacities_are_kept_apart(seeded: str) -> None:
    _answers(seeded, "day")
    assert _kept(seeded) == {}
    _answers(seeded, "hour", capacity=3)
    _answers(seeded, "hour", capacity=7)  # the lot's "unknown" depends on it: its own days
    with psycopg.connect(seeded) as conn:
        prints = conn.execute("SELECT count(DISTINCT fingerprint) FROM history_fragments WHERE kind = 'parking_lot'")
        assert prints.fetchone() == (2,)
    _answers(seeded, "hour", capacity=3)


def _space(conn: psycopg.Connection[Any]) -> tuple[str, str]:
    """A space of lot-a and its device."""
    found = conn.execute("SELECT site_id, dev_eui FROM devices WHERE site_id = 'lot-a-m0'").fetchone()
    assert found is not None
    return found[0], found[1]


def _late(url: str, at: datetime) -> None:
    """A lot-a space's reading at ``at``, stored and queued as the writer leaves it, not rolled up."""
    with psycopg.connect(url) as conn:
        space, dev = _space(conn)
        flipped = conn.execute(
            "SELECT NOT occupied FROM parking_events WHERE site_id = %s AND time < %s ORDER BY time DESC LIMIT 1",
            (space, at),
        ).fetchone()
        assert flipped is not None
        _insert_raw(conn, [Reading("lot-a", space, at, int(flipped[0]), 600)], {space: dev}, "parking")
        conn.execute(
            "INSERT INTO rollup_dirty (kind, key, first, last) VALUES ('parking_lot', 'lot-a', %s, %s)", (at, at)
        )


@pytest.mark.parametrize("bucket", ["15min", "hour"])
def test_a_late_reading_forgets_the_days_from_its_own_on(seeded: str, bucket: str) -> None:
    first = _answers(seeded, bucket)
    kept = _kept(seeded)
    _late(seeded, DAY + timedelta(hours=10, minutes=7))
    queued = _answers(seeded, bucket)  # queued, not rolled up: the days from its own are from the readings
    assert queued["lot"] != first["lot"] and queued["line"] == first["line"]
    assert _kept(seeded) == kept  # nothing is written from under a queued span
    with psycopg.connect(seeded) as conn:
        conn.execute("SELECT rollups_refresh_pending()")
    assert _kept(seeded) == {k: n for k, n in kept.items() if k[1] < DAY}  # the day before holds
    assert len(_kept(seeded, "line_load")) == len(kept)  # another key's days hold
    assert _answers(seeded, bucket) == queued  # rolled up now, kept again
    assert _kept(seeded) == kept


def test_backfilled_readings_forget_the_days_they_change(seeded: str) -> None:
    _answers(seeded, "hour")
    kept = _kept(seeded)
    with psycopg.connect(seeded) as conn:  # a stretch of readings of a new space, stored and rolled up at once
        space, dev = _space(conn)
        at = [DAY - timedelta(hours=20) + timedelta(minutes=37 * k) for k in range(40)]
        _insert_raw(conn, [Reading("lot-a", space, t, k % 2, 600) for k, t in enumerate(at)], {space: dev}, "parking")
        conn.execute(
            "SELECT rollup_refresh('parking_lot', ARRAY['lot-a'], ARRAY[%s::timestamptz], ARRAY[%s::timestamptz])",
            (at[0], at[-1]),
        )
    assert _kept(seeded) == {}  # every kept day from the first backfilled reading's
    _answers(seeded, "hour")
    assert _kept(seeded) == kept


def test_a_refresh_in_progress_is_not_kept_from(seeded: str) -> None:
    with psycopg.connect(seeded) as refresh:  # the rollup job holds the lot's lock
        refresh.execute("SELECT pg_advisory_xact_lock(hashtext('parking_lot'), hashtext('lot-a'))")
        _answers(seeded, "hour")  # written whole
        assert _kept(seeded) == {}
        assert _kept(seeded, "line_load")  # another key is kept
    _answers(seeded, "hour")
    assert len(_kept(seeded)) == 3


def test_an_answer_before_the_data_or_in_another_zone_keeps_nothing(seeded: str) -> None:
    out: list[Any] = asyncio.run(
        _bodies(seeded, "hour", START, END, "Asia/Kolkata", END, 4, "UTC")  # buckets from the readings
    )
    assert all(database == python for _, python, database in out)
    assert _kept(seeded) == {}


def test_short_answers_write_every_bucket(seeded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fragments, "MIN_SPAN", timedelta(days=4, hours=1))  # the answers' 4 rolled-up days: too few
    _answers(seeded, "hour")
    assert _kept(seeded) == {}


@pytest.mark.parametrize("zone", range(len(ZONES)))
def test_random_answers_from_kept_days_equal_the_python_written_body(
    new_database: Callable[[], str], zone: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The random ranges, buckets, instants, zones and late readings of test_history_json, every answer with a
    whole day reading kept days."""
    monkeypatch.setattr(fragments, "MIN_SPAN", timedelta(0))
    keep_missing, kept = fragments.keep_missing, []

    async def counted(conn: psycopg.AsyncConnection[Any], texts: Any, args: dict[str, Any]) -> bool:
        done = await keep_missing(conn, texts, args)
        cur = await conn.execute("SELECT count(*) FROM history_fragments")
        kept.append((await cur.fetchone() or (0,))[0])
        return done

    monkeypatch.setattr(fragments, "keep_missing", counted)
    test_database_written_history_equals_the_python_written_body(new_database, zone)
    assert max(kept) > 0  # days were kept, and answers read them


async def _bin_bodies(url: str, site: str, now: datetime = END) -> tuple[bytes, bytes]:
    """A bin's hours as the route writes them, and as it wrote them before any day was kept (orjson)."""
    span: dict[str, Any] = {"site_id": site, "start": START, "end": END, "bucket": "hour", "tz": TZ, "now": now}
    async with await psycopg.AsyncConnection.connect(url, options="-c TimeZone=America/Sao_Paulo") as conn:
        items, n = await waste.history_json(conn, **span)
        assert conn.info.parameter_status("TimeZone") == "America/Sao_Paulo"  # left as it was
        rows = await waste.history_buckets(conn, **span)
    for r in rows:
        r["time"] = r["time"].astimezone(ZoneInfo(TZ))
    assert n == len(rows)
    return items, orjson.dumps(rows, option=orjson.OPT_UTC_Z)[1:-1]


@pytest.fixture
def bins(new_database: Callable[[], str]) -> str:
    url = new_database()
    migrate(url, tz=TZ)
    _register_bins(url)
    levels = _random_levels(random.Random(5), DAY)
    with psycopg.connect(url) as conn:
        _insert_levels(conn, levels)
        conn.execute(
            "SELECT rollup_refresh('bin_fill', %s, %s, %s)",
            (list(BINS), [min(v.time for v in levels)] * 2, [max(v.time for v in levels)] * 2),
        )
    return url


def test_a_bins_hours_from_kept_days_equal_the_orjson_written_body(bins: str) -> None:
    for site in BINS:
        database, python = asyncio.run(_bin_bodies(bins, site))
        assert database == python, site
    days = {("01:00", DAY - timedelta(days=1)), ("01:00", DAY), ("01:00", DAY + timedelta(hours=25))}
    for site in BINS:
        kept = _kept(bins, "bin_fill", site)
        assert set(kept) == days and all(0 < n <= 25 for n in kept.values()), site
    for site in BINS:  # read back
        database, python = asyncio.run(_bin_bodies(bins, site))
        assert database == python, site
    with psycopg.connect(bins) as conn:  # a late reading: stored, queued, rolled up
        conn.execute(
            "INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, battery_v)"
            " SELECT %s, dev_eui, site_id, 99.5, 3.1 FROM devices WHERE site_id = 'bin-a'",
            (DAY + timedelta(hours=30, minutes=1),),
        )
        at = DAY + timedelta(hours=30, minutes=1)
        conn.execute("INSERT INTO rollup_dirty (kind, key, first, last) VALUES ('bin_fill', 'bin-a', %s, %s)", (at, at))
        conn.execute("SELECT rollups_refresh_pending()")
    assert set(_kept(bins, "bin_fill", "bin-a")) == days - {("01:00", DAY + timedelta(hours=25))}
    assert set(_kept(bins, "bin_fill", "bin-b")) == days
    database, python = asyncio.run(_bin_bodies(bins, "bin-a"))
    assert database == python and b"99.5" in database
