"""The rollups of migration 0019 against plain-Python computations from the readings: lots and lines per 15
minutes (and their hours summed from the quarters), a bin's fill per hour and local day, and the bin history that
reads them. Each time zone gets a database migrated in it (the rollups are bucketed in the migration's zone), and
its days include DST changes; the writer and the rollup job keep them equal after late and backfilled readings,
and the migration builds them for a database that already holds readings.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import pytest

from stadtpuls.api.occupancy import bucket_edges
from stadtpuls.api.queries import waste
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.rollups import refresh_pending
from stadtpuls.migrate import migrate
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_rollups import (  # noqa: E402  (the reference computation and helpers of 0008's tests)
    SPACES,
    Reading,
    _check_parking,
    _insert_raw,
    _random_readings,
    _register,
    _span,
    _write_late_and_backfilled,
    reference,
)

APP = "00000000-0000-0000-0000-00000000000c"
#: (zone the database is migrated in, a day of a DST change there, or any day for zones without DST)
ZONES = [
    ("Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, tzinfo=UTC)),
    ("Asia/Kolkata", datetime(2026, 6, 1, tzinfo=UTC)),  # half-hour offset: quarters, not hours, of UTC
]
BINS = ("bin-a", "bin-b")


@dataclass(frozen=True)
class Level:
    site_id: str
    time: datetime
    fill: float
    battery_v: float | None


def _refresh_all(conn: psycopg.Connection[Any], kind: str, keys: list[str], first: datetime, last: datetime) -> None:
    conn.execute("SELECT rollup_refresh(%s, %s, %s, %s)", (kind, keys, [first] * len(keys), [last] * len(keys)))


def _check_lot_rollups(conn: psycopg.Connection[Any], readings: list[Reading], tz: str) -> None:
    """Every lot's quarter and hour rollups against the raw computation over all of its readings."""
    t0, t1 = _span(readings)
    for lot in SPACES:
        for bucket, table in (("15min", "parking_lot_15min"), ("hour", "parking_lot_hourly")):
            rows = conn.execute(
                f"SELECT bucket, occupied_s, free_s, occupied_end, free_end, free_min FROM {table}"  # noqa: S608
                " WHERE lot_id = %s ORDER BY bucket",
                (lot,),
            ).fetchall()
            assert rows, (lot, table)
            expected = reference(readings, lot, t0, t1 + timedelta(days=1), bucket, tz, t1 + timedelta(days=1))
            _check_parking(rows, expected, f"{tz} {bucket} {lot}")


@pytest.fixture
def zoned_db(new_database: Callable[[], str]) -> Callable[[str], str]:
    """A fresh database migrated in time zone ``tz``."""

    def make(tz: str) -> str:
        url = new_database()
        migrate(url, tz=tz)
        return url

    return make


@pytest.mark.parametrize("zone", range(len(ZONES)))
def test_quarters_and_the_hours_summed_from_them_equal_the_raw_computation(
    zoned_db: Callable[[str], str], zone: int
) -> None:
    tz, day = ZONES[zone]
    url = zoned_db(tz)
    rng = random.Random(20 + zone)
    readings = _random_readings(rng, day, SPACES, "parking")
    devs = _register(url, readings, "parking")
    t0, t1 = _span(readings)
    with psycopg.connect(url) as conn:
        _insert_raw(conn, readings, devs, "parking")
        _refresh_all(conn, "parking_lot", list(SPACES), t0, t1)
        _check_lot_rollups(conn, readings, tz)


@pytest.mark.parametrize("zone", [0, 2])
def test_line_quarters_and_hours_equal_the_raw_computation(zoned_db: Callable[[str], str], zone: int) -> None:
    tz, day = ZONES[zone]
    url = zoned_db(tz)
    readings = _random_readings(random.Random(30 + zone), day, {"line-1": 3}, "passengers")
    devs = _register(url, readings, "passengers")
    t0, t1 = _span(readings)
    with psycopg.connect(url) as conn:
        _insert_raw(conn, readings, devs, "passengers")
        _refresh_all(conn, "line_load", ["line-1"], t0, t1)
        for bucket, table in (("15min", "line_load_15min"), ("hour", "line_load_hourly")):
            rows = conn.execute(
                f"SELECT bucket, on_board_s, on_board_end, vehicles_end, pax_in, pax_out, readings FROM {table}"  # noqa: S608
                " WHERE line_id = 'line-1' ORDER BY bucket"
            ).fetchall()
            expected = reference(readings, "line-1", t0, t1 + timedelta(days=1), bucket, tz, t1 + timedelta(days=1))
            got = {r[0]: r[1:] for r in rows}  # also the buckets with readings and no vehicle known
            assert set(expected) <= set(got), (tz, bucket)
            assert all(g[0] == 0 and g[2] == 0 for b, g in got.items() if b not in expected), (tz, bucket)
            for b, e in expected.items():
                assert got[b][0] == pytest.approx(e["value_s"], abs=1e-3), (tz, bucket, b)
                assert (got[b][1], got[b][2]) == (e["value_end"], e["known_end"]), (tz, bucket, b)
            assert sum(r[6] for r in rows) == len(readings), (tz, bucket)
            assert (sum(r[4] for r in rows), sum(r[5] for r in rows)) == (len(readings), 2 * len(readings))


# --- bins ---------------------------------------------------------------------------------------------------------

BIN_FLEET = """
sites:
  - {site_id: bin-a, kind: bin, depth_mm: 1200, full_mm: 200}
  - {site_id: bin-b, kind: bin, depth_mm: 1000, full_mm: 100}
devices:
  - {dev_eui: "a100000000000001", codec: milesight-iot/em310-udl, site_id: bin-a, report_interval_s: 1800}
  - {dev_eui: "a100000000000002", codec: milesight-iot/em310-udl, site_id: bin-b, report_interval_s: 3600}
"""
BIN_DEVS = {"bin-a": "a100000000000001", "bin-b": "a100000000000002"}


def _register_bins(url: str) -> None:
    with psycopg.connect(url) as conn:
        report = apply(conn, parse_text(BIN_FLEET, "yaml"))
        assert not report.errors, report.errors


def _random_levels(rng: random.Random, day: datetime) -> list[Level]:
    out = []
    for site in BINS:
        t = day - timedelta(days=2) + timedelta(seconds=rng.randrange(3600))
        fill = rng.uniform(0, 50)
        while t < day + timedelta(days=3):
            out.append(Level(site, t, round(fill, 1), round(rng.uniform(3.0, 3.6), 2)))
            fill = fill + rng.uniform(0, 3) if fill < 90 else rng.uniform(0, 10)  # fills up, then emptied
            t += timedelta(seconds=rng.choice((60, 600, 1800, 3600, 3 * 3600)))
    return out


def _insert_levels(conn: psycopg.Connection[Any], levels: list[Level]) -> None:
    conn.cursor().executemany(
        "INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, battery_v) VALUES (%s, %s, %s, %s, %s)",
        [(v.time, BIN_DEVS[v.site_id], v.site_id, v.fill, v.battery_v) for v in levels],
    )


def bin_reference(
    levels: list[Level], site: str, start: datetime, end: datetime, bucket: str, tz: str
) -> dict[datetime, tuple[Any, ...]]:
    """Per bucket (whole buckets from the one holding ``start``) with a reading in ``[its start, end)``: last,
    lowest, highest and mean fill, lowest battery voltage, readings."""
    edges = bucket_edges(start, end, bucket, tz)  # type: ignore[arg-type]
    mine = sorted((v for v in levels if v.site_id == site), key=lambda v: v.time)
    out = {}
    for a, b in zip(edges, edges[1:], strict=False):
        inside = [v for v in mine if a <= v.time < min(b, end)]
        if inside:
            fills = [v.fill for v in inside]
            out[a.astimezone(UTC)] = (
                inside[-1].fill,
                min(fills),
                max(fills),
                sum(fills) / len(fills),
                min((v.battery_v for v in inside if v.battery_v is not None), default=None),
                len(inside),
            )
    return out


def _check_bins(got: list[tuple[Any, ...]], expected: dict[datetime, tuple[Any, ...]], label: object) -> None:
    assert [g[0] for g in got] == sorted(expected), label
    for g in got:
        e = expected[g[0]]
        assert g[1:4] == pytest.approx(e[:3], abs=1e-4), (label, g[0])
        assert g[4] == pytest.approx(e[3], abs=1e-4), (label, g[0])
        assert (g[5] is None, g[5]) == (e[4] is None, pytest.approx(e[4], abs=1e-4)), (label, g[0])
        assert g[6] == e[5], (label, g[0])


def _bin_rows(conn: psycopg.Connection[Any], table: str, site: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT bucket, fill_last, fill_min, fill_max, fill_sum / readings, battery_v_min, readings"
        f" FROM {table} WHERE site_id = %s ORDER BY bucket",  # noqa: S608
        (site,),
    ).fetchall()


def _check_bin_rollups(conn: psycopg.Connection[Any], levels: list[Level], tz: str) -> None:
    t0 = min(v.time for v in levels) - timedelta(days=1)
    t1 = max(v.time for v in levels) + timedelta(days=1)
    for site in BINS:
        for bucket, table in (("hour", "bin_fill_hourly"), ("day", "bin_fill_daily")):
            _check_bins(_bin_rows(conn, table, site), bin_reference(levels, site, t0, t1, bucket, tz), (tz, table))


async def _bin_history(
    url: str, site: str, start: datetime, end: datetime, bucket: str, tz: str, now: datetime
) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await waste.history_buckets(conn, site_id=site, start=start, end=end, bucket=bucket, tz=tz, now=now)
    return [
        (r["time"], r["fill_pct"], r["fill_min"], r["fill_max"], r["fill_avg"], r["battery_v"], r["readings"])
        for r in rows
    ]


@pytest.mark.parametrize("zone", range(len(ZONES)))
def test_bin_rollups_and_the_bin_history_equal_the_readings(zoned_db: Callable[[str], str], zone: int) -> None:
    """The rollups, and the history from them (closed buckets), the open day's hours and the readings (the open
    hour, queued spans), for random ranges, buckets and instants; then a late reading queued, not rolled up yet."""
    tz, day = ZONES[zone]
    url = zoned_db(tz)
    rng = random.Random(40 + zone)
    _register_bins(url)
    levels = _random_levels(rng, day)
    with psycopg.connect(url) as conn:
        _insert_levels(conn, levels)
        _refresh_all(conn, "bin_fill", list(BINS), min(v.time for v in levels), max(v.time for v in levels))
        _check_bin_rollups(conn, levels, tz)
    for k in range(12):
        bucket = ("hour", "day")[k % 2]
        start = day - timedelta(days=2) + timedelta(seconds=rng.randrange(3 * 86400))
        end = start + timedelta(seconds=rng.randrange(3600, 3 * 86400))
        now = start + (end - start) * rng.uniform(0.2, 1.3)
        if k % 4 == 3:  # a late reading stored and queued, not rolled up yet: served from the readings
            late = Level("bin-a", start + (now - start) / 3, 77.7, 2.9)
            levels.append(late)
            with psycopg.connect(url) as conn:
                _insert_levels(conn, [late])
                conn.execute(
                    "INSERT INTO rollup_dirty (kind, key, first, last) VALUES ('bin_fill', 'bin-a', %s, %s)",
                    (late.time, late.time),
                )
        for site in BINS:
            got = asyncio.run(_bin_history(url, site, start, end, bucket, tz, now))
            _check_bins(got, bin_reference(levels, site, start, min(end, now), bucket, tz), (tz, bucket, start, now))
        with psycopg.connect(url) as conn:
            refresh_pending(conn)
    with psycopg.connect(url) as conn:
        _check_bin_rollups(conn, levels, tz)


def _bin_uplink(dev: str, f_cnt: int, at: datetime, distance_mm: int) -> tuple[str, bytes]:
    payload, _ = get("milesight-iot/em310-udl").encode(
        85, {"battery": np.array([90]), "distance": np.array([distance_mm])}
    )
    msg = chirpstack_uplink(dev_eui=dev, application_id=APP, time=at, f_port=85, payload=payload.tobytes(), f_cnt=f_cnt)
    return chirpstack_topic(APP, dev), orjson.dumps(msg)


def test_writer_and_rollup_job_keep_bin_rollups_with_late_and_backfilled_readings(clean_db: str) -> None:
    rng = random.Random(12)
    tz, day = "Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)  # the session's zone, on its DST change day
    _register_bins(clean_db)
    levels = _random_levels(rng, day)
    messages = [_bin_uplink(BIN_DEVS[v.site_id], k, v.time, 300 + rng.randrange(600)) for k, v in enumerate(levels)]
    _write_late_and_backfilled(clean_db, messages, rng, 41, "bin_levels")
    with psycopg.connect(clean_db) as conn:
        queued = conn.execute("SELECT DISTINCT kind, key FROM rollup_dirty ORDER BY 2").fetchall()
        assert queued == [("bin_fill", site) for site in BINS]
        assert refresh_pending(conn) == len(BINS)
        stored = [  # what the codec made of each reading
            Level(site, t, fill, battery)
            for site, t, fill, battery in conn.execute("SELECT site_id, time, fill_pct, battery_v FROM bin_levels")
        ]
        assert len(stored) == len(levels)
        _check_bin_rollups(conn, stored, tz)


def test_migration_builds_the_fine_rollups_of_an_existing_database(new_database: Callable[[], str]) -> None:
    url = new_database()
    migrate(url)
    rng = random.Random(4)
    day = datetime(2026, 10, 25, tzinfo=UTC)
    readings = _random_readings(rng, day, SPACES, "parking")
    devs = _register(url, readings, "parking")
    _register_bins(url)
    levels = _random_levels(rng, day)
    with psycopg.connect(url) as conn:  # back to the schema before 0019, with readings already stored
        conn.execute(
            "DROP VIEW town.bin_fill_hourly, town.bin_fill_daily, town.line_load_hourly, town.line_load_daily;"
            " DROP TABLE parking_lot_15min, line_load_15min, bin_fill_hourly, bin_fill_daily;"
            " DROP FUNCTION rollup_hours_from_quarters, rollup_refresh_bins;"
            " TRUNCATE parking_lot_hourly, parking_lot_daily"
        )
        conn.execute("DELETE FROM schema_migrations WHERE version = 19")
        _insert_raw(conn, readings, devs, "parking")
        _insert_levels(conn, levels)
    assert migrate(url).applied == ["0019_rollups_fine"]
    with psycopg.connect(url) as conn:
        _check_lot_rollups(conn, readings, "Europe/Berlin")
        _check_bin_rollups(conn, levels, "Europe/Berlin")
