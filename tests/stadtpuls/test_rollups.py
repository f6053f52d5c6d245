"""History rollups (migration 0008) against a plain-Python computation of the same quantities.

The reference below reads the raw readings and integrates each space's (vehicle's) step function itself: a reading
holds until the next one of its space or until ``SILENT_FACTOR`` report intervals have passed. The SQL functions,
the rollup tables the writer keeps and the migration's initial build must all agree with it, for random ranges,
bucket widths and time zones around DST changes, and after late and backfilled readings.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest

from stadtpuls.api.occupancy import bucket_edges
from stadtpuls.api.queries import rollups
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.rollups import refresh_pending
from stadtpuls.ingest.writer import Writer
from stadtpuls.migrate import migrate
from stadtpuls.schema import SILENT_FACTOR
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink

APP = "00000000-0000-0000-0000-00000000000b"
#: (zone, a DST change day in it, or any day for zones without DST)
ZONES = [
    ("Europe/Berlin", datetime(2026, 3, 29, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 11, 1, tzinfo=UTC)),
    ("Australia/Sydney", datetime(2026, 4, 5, tzinfo=UTC)),
    ("Asia/Kolkata", datetime(2026, 6, 1, tzinfo=UTC)),
]
WIDTHS = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
SPACES = {"lot-a": 4, "lot-b": 2}
INTERVALS = (600, 1800, 3600)


@dataclass(frozen=True)
class Reading:
    group: str  # lot or line
    member: str  # space or vehicle
    time: datetime
    value: int  # occupied (0/1) or people on board
    interval: int  # the device's report interval, seconds


def _pieces(readings: list[Reading], group: str) -> list[tuple[float, float, int, int, int]]:
    """``(from, to, member)`` intervals of the group's readings as ``(t0, t1, value, 1, member index)``."""
    by_member: dict[str, list[Reading]] = {}
    for r in sorted(readings, key=lambda r: r.time):
        if r.group == group:
            by_member.setdefault(r.member, []).append(r)
    out = []
    for k, rows in enumerate(by_member.values()):
        for i, r in enumerate(rows):
            t0 = r.time.timestamp()
            t1 = t0 + SILENT_FACTOR * r.interval
            if i + 1 < len(rows):
                t1 = min(t1, rows[i + 1].time.timestamp())
            if t1 > t0:
                out.append((t0, t1, r.value, 1, k))
    return out


def reference(
    readings: list[Reading], group: str, start: datetime, end: datetime, bucket: str, tz: str, now: datetime
) -> dict[datetime, dict[str, float]]:
    """Per bucket with a known member: value-seconds, known-seconds (value 0 counts as free for parking), the
    value and the known count at the end, and the fewest known-with-value-0 at any moment."""
    iv = _pieces(readings, group)
    edges = bucket_edges(start, min(end, now), bucket, tz)  # type: ignore[arg-type]
    out: dict[datetime, dict[str, float]] = {}
    for a, b in zip(edges, edges[1:], strict=False):
        lo, hi = max(a, start).timestamp(), min(b, end, now).timestamp()
        if hi <= lo:
            continue
        points = sorted({lo, hi} | {t for t0, t1, *_ in iv for t in (t0, t1) if lo < t < hi})
        row = {"value_s": 0.0, "zero_s": 0.0, "value_end": 0, "zero_end": 0, "known_end": 0, "zero_min": 1e9}
        known = False
        for p, q in zip(points, points[1:], strict=False):
            live = [(v, k) for t0, t1, v, _, k in iv if t0 <= p and t1 >= q]
            value = sum(v for v, _ in live)
            zero = sum(1 for v, _ in live if v == 0)
            known |= bool(live)
            row["value_s"] += value * (q - p)
            row["zero_s"] += zero * (q - p)
            row["zero_min"] = min(row["zero_min"], zero)
            row["value_end"], row["zero_end"], row["known_end"] = value, zero, len(live)
        if known:
            out[a.astimezone(UTC)] = row
    return out


def _random_readings(rng: random.Random, day: datetime, groups: dict[str, int], kind: str) -> list[Reading]:
    out = []
    for group, members in groups.items():
        for m in range(members):
            interval = rng.choice(INTERVALS)
            t = day - timedelta(days=2) + timedelta(seconds=rng.randrange(3600))
            while t < day + timedelta(days=3):
                value = rng.random() < 0.5 if kind == "parking" else rng.randrange(0, 60)
                out.append(Reading(group, f"{group}-m{m}", t, int(value), interval))
                gap = rng.expovariate(1 / interval) if rng.random() < 0.9 else interval * rng.uniform(3, 12)
                t += timedelta(seconds=max(1, int(gap)))
    return out


def _fleet(readings: list[Reading], kind: str) -> str:
    members = {(r.group, r.member): r.interval for r in readings}
    group_kind, member_kind = ("lot", "space") if kind == "parking" else ("line", "vehicle")
    codec = "nwave/nps405" if kind == "parking" else "opensource/esp32-paxcounter"
    lines = ["sites:"]
    lines += [f"  - {{site_id: {g}, kind: {group_kind}}}" for g in sorted({g for g, _ in members})]
    lines += [f"  - {{site_id: {m}, kind: {member_kind}, parent_id: {g}}}" for g, m in members]
    lines.append("devices:")
    for k, ((_, m), interval) in enumerate(members.items()):
        dev = f"{7 if kind == 'parking' else 8}{k:015x}"
        lines.append(f'  - {{dev_eui: "{dev}", codec: {codec}, site_id: {m}, report_interval_s: {interval}}}')
    return "\n".join(lines) + "\n"


def _register(url: str, readings: list[Reading], kind: str) -> dict[str, str]:
    """Sites and devices for ``readings``; returns member -> dev_eui."""
    fleet = parse_text(_fleet(readings, kind), "yaml")
    with psycopg.connect(url) as conn:
        report = apply(conn, fleet)
        assert not report.errors, report.errors
        return dict(conn.execute("SELECT site_id, dev_eui FROM devices").fetchall())


def _insert_raw(conn: psycopg.Connection[Any], readings: list[Reading], devs: dict[str, str], kind: str) -> None:
    if kind == "parking":
        conn.cursor().executemany(
            "INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied) VALUES (%s, %s, %s, %s, %s)",
            [(r.time, devs[r.member], r.member, r.group, bool(r.value)) for r in readings],
        )
    else:
        conn.cursor().executemany(
            "INSERT INTO passenger_counts (time, dev_eui, site_id, line_id, pax_count, pax_in, pax_out)"
            " VALUES (%s, %s, %s, %s, %s, 1, 2)",
            [(r.time, devs[r.member], r.member, r.group, r.value) for r in readings],
        )


def _check_parking(rows: list[tuple[Any, ...]], expected: dict[datetime, dict[str, float]], label: str) -> None:
    got = {r[0]: r[1:] for r in rows}
    assert set(got) == set(expected), label
    for b, e in expected.items():
        occupied_s, free_s, occupied_end, free_end, free_min = got[b][:5]
        assert occupied_s == pytest.approx(e["value_s"], abs=1e-3), (label, b)
        assert free_s == pytest.approx(e["zero_s"], abs=1e-3), (label, b)
        assert (occupied_end, free_end, free_min) == (e["value_end"], e["zero_end"], e["zero_min"]), (label, b)


def _span(readings: list[Reading]) -> tuple[datetime, datetime]:
    """From an hour before the first reading to a day after the last."""
    return min(r.time for r in readings) - timedelta(hours=1), max(r.time for r in readings) + timedelta(days=1)


def _hourly_expected(readings: list[Reading], lot: str, tz: str) -> dict[datetime, dict[str, float]]:
    t0, t1 = _span(readings)
    return reference(readings, lot, t0, t1, "hour", tz, t1)


def _rollup_rows(conn: psycopg.Connection[Any], lot: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT bucket, occupied_s, free_s, occupied_end, free_end, free_min FROM parking_lot_hourly"
        " WHERE lot_id = %s ORDER BY bucket",
        (lot,),
    ).fetchall()


@pytest.mark.parametrize("seed", range(len(ZONES)))
def test_occupancy_equals_the_raw_computation_for_random_ranges_buckets_and_zones(clean_db: str, seed: int) -> None:
    rng = random.Random(seed)
    tz, day = ZONES[seed]
    readings = _random_readings(rng, day, SPACES, "parking")
    devs = _register(clean_db, readings, "parking")
    with psycopg.connect(clean_db) as conn:
        _insert_raw(conn, readings, devs, "parking")
        for _ in range(8):
            bucket = rng.choice(list(WIDTHS))
            start = day - timedelta(days=1, seconds=rng.randrange(86400))
            end = start + timedelta(seconds=rng.randrange(3600, 3 * 86400))
            now = rng.choice([end + timedelta(days=1), start + (end - start) * rng.random()])
            for lot in SPACES:
                rows = conn.execute(
                    "SELECT bucket, occupied_s, free_s, occupied_end, free_end, free_min"
                    " FROM parking_occupancy(ARRAY[%s], %s, %s, %s, %s, %s, %s)",
                    (lot, start, end, WIDTHS[bucket], tz, SILENT_FACTOR, now),
                ).fetchall()
                expected = reference(readings, lot, start, end, bucket, tz, now)
                _check_parking(rows, expected, f"{tz} {bucket} {start}..{end} now {now} {lot}")


def test_passengers_on_board_equal_the_raw_computation(clean_db: str) -> None:
    rng = random.Random(7)
    tz, day = ZONES[1]
    readings = _random_readings(rng, day, {"line-1": 3}, "passengers")
    devs = _register(clean_db, readings, "passengers")
    with psycopg.connect(clean_db) as conn:
        _insert_raw(conn, readings, devs, "passengers")
        conn.execute(
            "SELECT rollup_refresh('line_load', ARRAY['line-1'], ARRAY[%s::timestamptz], ARRAY[%s::timestamptz])",
            (min(r.time for r in readings), max(r.time for r in readings)),
        )
        for bucket in ("hour", "day"):
            start, end = day - timedelta(days=1), day + timedelta(days=2)
            rows = conn.execute(
                "SELECT bucket, on_board_s, on_board_end, vehicles_end, readings"
                " FROM line_load(ARRAY['line-1'], %s, %s, %s, %s, %s)",
                (start, end, WIDTHS[bucket], tz, SILENT_FACTOR),
            ).fetchall()
            expected = reference(readings, "line-1", start, end, bucket, tz, end + timedelta(days=9))
            got = {r[0]: r[1:] for r in rows if r[3] or r[1]}
            assert set(got) == set(expected)
            for b, e in expected.items():
                assert got[b][0] == pytest.approx(e["value_s"], abs=1e-3)
                assert (got[b][1], got[b][2]) == (e["value_end"], e["known_end"])
            assert sum(r[4] for r in rows) == sum(1 for r in readings if start <= r.time < end)
        hourly = conn.execute(
            "SELECT bucket, on_board_s, pax_in, pax_out FROM line_load_hourly WHERE line_id = 'line-1'"
        ).fetchall()
    expected = _hourly_expected(readings, "line-1", tz)
    assert {r[0] for r in hourly if r[1]} == {b for b, e in expected.items() if e["value_s"]}
    assert sum(r[2] for r in hourly) == len(readings) and sum(r[3] for r in hourly) == 2 * len(readings)


def _uplink(dev: str, f_cnt: int, at: datetime, occupied: int) -> tuple[str, bytes]:
    msg = chirpstack_uplink(dev_eui=dev, application_id=APP, time=at, f_port=1, payload=bytes([occupied]), f_cnt=f_cnt)
    return chirpstack_topic(APP, dev), orjson.dumps(msg)


def _write_late_and_backfilled(
    url: str, messages: list[tuple[str, bytes]], rng: random.Random, batch: int, table: str
) -> None:
    """Write ``messages`` (in time order) through the pipeline and the writer, ``batch`` at a time: the first two
    thirds in time order, then a backfill of old ones held back mixed with late stragglers. Every batch stores one
    row of ``table`` per message."""
    with psycopg.connect(url) as conn:
        pipeline = Pipeline(load_registry(conn))
    order = list(range(len(messages)))
    held = set(rng.sample(order, len(order) // 3))
    first = [i for i in order if i not in held]
    rest = sorted(held, key=lambda i: (rng.random() < 0.5, -i))
    writer = Writer(url)
    try:
        for chunk in (first, rest):
            for k in range(0, len(chunk), batch):
                part = [messages[i] for i in chunk[k : k + batch]]
                prepared = pipeline.prepare([t for t, _ in part], [p for _, p in part], time.time())
                assert writer.write(prepared.batch).domain.get(table) == len(part)
    finally:
        writer.close()


def test_writer_keeps_rollups_equal_to_the_raw_computation_with_late_and_backfilled_readings(clean_db: str) -> None:
    rng = random.Random(11)
    tz, day = "Europe/Berlin", datetime(2026, 10, 25, tzinfo=UTC)  # the migration's zone, on its DST change day
    readings = _random_readings(rng, day, SPACES, "parking")
    devs = _register(clean_db, readings, "parking")
    messages = [_uplink(devs[r.member], k, r.time, r.value) for k, r in enumerate(readings)]
    _write_late_and_backfilled(clean_db, messages, rng, 37, "parking_events")
    with psycopg.connect(clean_db) as conn:
        queued = conn.execute("SELECT DISTINCT kind, key FROM rollup_dirty ORDER BY 2").fetchall()
        assert queued == [("parking_lot", lot) for lot in sorted(SPACES)]
        assert refresh_pending(conn) == len(SPACES)
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        for lot in SPACES:
            _check_parking(_rollup_rows(conn, lot), _hourly_expected(readings, lot, tz), lot)
            daily = conn.execute(
                "SELECT bucket, occupied_s, free_s, events FROM parking_lot_daily WHERE lot_id = %s", (lot,)
            ).fetchall()
            t0, t1 = min(r.time for r in readings), max(r.time for r in readings) + timedelta(days=1)
            expected = reference(readings, lot, t0 - timedelta(days=1), t1, "day", tz, t1)
            assert {r[0] for r in daily} == set(expected)
            for b, occupied_s, free_s, _ in daily:
                assert occupied_s == pytest.approx(expected[b]["value_s"], abs=1e-3)
                assert free_s == pytest.approx(expected[b]["zero_s"], abs=1e-3)
            assert sum(r[3] for r in daily) == sum(1 for r in readings if r.group == lot)


def test_migration_builds_the_rollups_of_an_existing_database(new_database) -> None:
    url = new_database()
    migrate(url)
    rng = random.Random(3)
    day = datetime(2026, 3, 29, tzinfo=UTC)
    readings = _random_readings(rng, day, SPACES, "parking")
    devs = _register(url, readings, "parking")
    with psycopg.connect(url) as conn:  # back to the schema before 0008, with readings already stored
        conn.execute(
            # the towns' views of the rollups (0016_tenant_rls, 0019_rollups_fine)
            "DROP VIEW town.parking_lot_hourly, town.line_load_hourly, town.line_load_daily;"
            " DROP TABLE parking_lot_hourly, parking_lot_daily, line_load_hourly, line_load_daily;"
            " DROP FUNCTION rollup_refresh, rollup_refresh_daily, rollups_build, rollups_refresh_pending;"
            " DROP FUNCTION parking_occupancy, line_load, rollup_buckets, rollup_bucket_end, rollup_floor,"
            " rollup_timezone, rollup_segment_buckets"
        )
        conn.execute("DELETE FROM schema_migrations WHERE version = 8")
        _insert_raw(conn, readings, devs, "parking")
    assert migrate(url).applied == ["0008_rollups"]
    with psycopg.connect(url) as conn:
        for lot in SPACES:
            rows = _rollup_rows(conn, lot)
            assert rows, lot
            _check_parking(rows, _hourly_expected(readings, lot, "Europe/Berlin"), lot)


async def _history(url: str, lot: str, start: datetime, end: datetime, bucket: str, now: datetime) -> list[Any]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await rollups.history(
            conn, rollups.PARKING_LOT, key=lot, start=start, end=end, bucket=bucket, tz="Europe/Berlin", now=now
        )


def test_history_from_rollups_and_readings_equals_the_raw_computation(clean_db: str) -> None:
    """Closed buckets from the rollups, the open one (a day: its rolled-up hours and the open hour) and queued
    spans from the readings: together they equal the raw computation at any instant."""
    rng = random.Random(5)
    tz, day = ZONES[1]
    readings = _random_readings(rng, day, SPACES, "parking")
    devs = _register(clean_db, readings, "parking")
    first, last = min(r.time for r in readings), max(r.time for r in readings)
    with psycopg.connect(clean_db) as conn:
        _insert_raw(conn, readings, devs, "parking")
        conn.execute(
            "SELECT rollup_refresh('parking_lot', ARRAY['lot-a', 'lot-b'], ARRAY[%s, %s]::timestamptz[],"
            " ARRAY[%s, %s]::timestamptz[])",
            (first, first, last, last),
        )
    for k in range(12):
        bucket = ("hour", "day", "15min")[k % 3]
        start = first + timedelta(seconds=rng.randrange(2 * 86400))
        end = start + timedelta(seconds=rng.randrange(3600, 3 * 86400))
        now = start + (end - start) * rng.uniform(0.3, 1.3)
        if k % 4 == 3:  # a late reading stored and queued, not rolled up yet: served from the readings
            interval = next(r.interval for r in readings if r.member == "lot-a-m0")
            late = Reading("lot-a", "lot-a-m0", start + (now - start) / 2, 1, interval)
            readings.append(late)
            with psycopg.connect(clean_db) as conn:
                _insert_raw(conn, [late], devs, "parking")
                conn.execute(
                    "INSERT INTO rollup_dirty (kind, key, first, last) VALUES ('parking_lot', 'lot-a', %s, %s)",
                    (late.time, late.time),
                )
        got = asyncio.run(_history(clean_db, "lot-a", start, end, bucket, now))
        edges = bucket_edges(start, min(end, now), bucket, tz)  # type: ignore[arg-type]
        expected = reference(readings, "lot-a", edges[0], end, bucket, tz, now)  # whole buckets from the first
        assert [g["start"] for g in got] == [e.astimezone(UTC) for e in edges[:-1]], (bucket, start, end, now)
        for g in got:
            e = expected.get(g["start"])
            label = (bucket, start, end, now, g["start"])
            if e is None:  # no space known in the bucket
                assert (g["occupied_s"], g["free_s"], g["occupied_end"], g["free_end"]) == (0, 0, 0, 0), label
                continue
            assert g["occupied_s"] == pytest.approx(e["value_s"], abs=1e-3), label
            assert g["free_s"] == pytest.approx(e["zero_s"], abs=1e-3), label
            assert (g["occupied_end"], g["free_end"], g["free_min"]) == (e["value_end"], e["zero_end"], e["zero_min"])
        with psycopg.connect(clean_db) as conn:
            conn.execute("SELECT rollups_refresh_pending()")


def test_a_silent_sensor_turns_unknown_and_a_space_takes_its_newest_sensor(clean_db: str) -> None:
    fleet = """
sites:
  - {site_id: lot-s, kind: lot}
  - {site_id: s1, kind: space, parent_id: lot-s}
  - {site_id: s2, kind: space, parent_id: lot-s}
devices:
  - {dev_eui: "9000000000000001", codec: nwave/nps405, site_id: s1, report_interval_s: 3600}
  - {dev_eui: "9000000000000002", codec: nwave/nps405, site_id: s2, report_interval_s: 3600}
  - {dev_eui: "9000000000000003", codec: nwave/nps405, site_id: s2, report_interval_s: 3600}
"""
    t0 = datetime(2025, 3, 3, 8, tzinfo=UTC)
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, parse_text(fleet, "yaml"))
        assert not report.errors
        conn.cursor().executemany(
            "INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied) VALUES (%s, %s, %s, 'lot-s', %s)",
            [
                (t0, "9000000000000001", "s1", True),
                (t0, "9000000000000002", "s2", True),
                (t0 + timedelta(minutes=30), "9000000000000003", "s2", False),  # the space's newer sensor
            ],
        )
        rows = conn.execute(
            "SELECT bucket, occupied_s, free_s, occupied_end, free_end FROM parking_occupancy(ARRAY['lot-s'],"
            " %s, %s, interval '1 hour', 'Europe/Berlin', %s, %s)",
            (t0, t0 + timedelta(hours=4), SILENT_FACTOR, t0 + timedelta(hours=3, minutes=30)),
        ).fetchall()
    # s1 occupied until it goes silent at 10:30; s2 occupied for 30 minutes, then free (its newer sensor) until 11:00
    assert [(r[0] - t0, r[1], r[2], r[3], r[4]) for r in rows] == [
        (timedelta(0), 3600 + 1800, 1800, 1, 1),
        (timedelta(hours=1), 3600, 3600, 1, 1),
        (timedelta(hours=2), 1800, 3600, 0, 1),
    ]  # nothing known from 11:00 (both silent): no bucket, and none after now
