"""Kept days of a history's answer (migration 0024): written by the first answer that needs them, read back by the
next, forgotten exactly where the rollup refresh changes the rollups (late and backfilled readings), and every
answer byte for byte the body Python wrote before 0021 (``history_reference``), on days of a DST change too."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from test_history_json import _bodies, _seed
from test_rollups import Reading, _insert_raw

from stadtpuls.migrate import migrate

TZ = "Europe/Berlin"
DAY = datetime(2026, 10, 24, 22, tzinfo=UTC)  # local midnight of 2026-10-25, a day of 25 hours
START = DAY - timedelta(days=1, hours=17)  # 13:00 local: the first day is not whole
END = DAY + timedelta(days=2, hours=7)


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


def _kept(url: str, kind: str = "parking_lot") -> dict[tuple[str, datetime], int]:
    """(width, local day) -> buckets of the kept days of ``kind``."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT to_char(width, 'HH24:MI'), day, buckets FROM history_fragments WHERE kind = %s", (kind,)
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
