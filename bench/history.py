"""History queries over a long stretch of a town, with and without the rollups, and bytes per reading on disk.

Seeds ``--days`` (default a year) of the town (:mod:`bench._citydata`) into a fresh, migrated database, builds the
rollups (``rollups_build()``, timed), then for 15-minute, hour and day buckets over 2, 7, 30, 90 and 365 days
(ranges longer than the seeded days are left out) measures, ``--repeats`` times each, median and p99:

* **before**: every bucket computed from the readings (``parking_occupancy`` over the whole range, the work a
  lot's history does without rollups), on a direct database connection (ranges over 30 days: one run);
* **after**: each history endpoint on the API server, for its busiest lot, line and bin:
  ``GET /api/v1/parking/lots/{id}/history``, ``GET /api/v1/buses/lines/{id}/load`` and
  ``GET /api/v1/waste/bins/{id}/history`` (hour and day buckets; an operator key), which read the rollups for
  ended buckets and the readings only for the open one. A lot's and a line's 15-minute and hour answers read the
  whole days they kept before as text (migration 0024): the first request of each range and bucket (``first``,
  which keeps the days no shorter range kept) is timed apart from the ``--repeats`` after it.
  Ranges an endpoint refuses (beyond its bucket and range limits) are reported as refused.

Then bytes per reading per table: on TimescaleDB after compressing every chunk (``hypertable_size``); on plain
PostgreSQL the table with its indexes (``pg_total_relation_size``). Targets: p99 < 100 ms for every served range,
bucket and endpoint; on TimescaleDB <= 8 B per domain reading and <= 40 B per raw uplink.

``--database URL`` measures a database seeded before (``--keep``) instead of seeding one; ``--sizes-only`` seeds
and reports the bytes per reading alone (no rollups, no timings); ``--no-readings`` leaves out the buckets from the
readings (the before).

    python -m bench.history [--days 365] [--city medium] [--repeats 15] [--keep] [--database URL] [--sizes-only]
                            [--no-readings]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from datetime import datetime, timedelta

import httpx
import psycopg

from stadtpuls.api.keys_cli import create_key
from stadtpuls.migrate import detect_mode, migrate
from stadtpuls.schema import SILENT_FACTOR

from ._citydata import seed_city
from ._report import Report
from .api import api_server, fresh_database

RANGES = (2, 7, 30, 90, 365)
WIDTHS = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
TARGET_P99_MS, TARGET_DOMAIN_B, TARGET_UPLINK_B = 100.0, 8.0, 40.0
DOMAIN_TABLES = ("parking_events", "bin_levels", "passenger_counts")
TZ = "Europe/Berlin"
#: endpoint -> (path, the busiest key's query, its buckets)
ENDPOINTS = {
    "lot": (
        "/api/v1/parking/lots/{}/history",
        "SELECT lot_id FROM parking_events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        ("15min", "hour", "day"),
    ),
    "line": (
        "/api/v1/buses/lines/{}/load",
        "SELECT line_id FROM passenger_counts GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        ("15min", "hour", "day"),
    ),
    "bin": (
        "/api/v1/waste/bins/{}/history",
        "SELECT site_id FROM bin_levels GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        ("hour", "day"),
    ),
}


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def _raw_ms(
    conn: psycopg.Connection, lot: str, start: datetime, end: datetime, width: timedelta, n: int
) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.execute(
            "SELECT count(*) FROM parking_occupancy(ARRAY[%s], %s, %s, %s, %s, %s, %s)",
            (lot, start, end, width, TZ, SILENT_FACTOR, end),
        ).fetchone()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _api_ms(client: httpx.Client, path: str, start: datetime, end: datetime, bucket: str, n: int) -> list[float] | None:
    params = {"start": start.isoformat(), "end": end.isoformat(), "bucket": bucket}
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path, params=params)
        out.append((time.perf_counter() - t) * 1000)
        if r.status_code == 422:
            return None
        r.raise_for_status()
    return out


def bytes_per_reading(conn: psycopg.Connection, mode: str) -> dict[str, float]:
    """Bytes on disk per row of each table (TimescaleDB: after compressing every chunk)."""
    out = {}
    for table in (*DOMAIN_TABLES, "uplinks"):
        rows = conn.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(psycopg.sql.Identifier(table)))
        n = rows.fetchone()[0]  # type: ignore[index]
        if mode == "timescaledb":
            conn.execute("SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%s) c", (table,))
            size = conn.execute("SELECT hypertable_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
        else:
            size = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
        out[table] = size / n if n else 0.0
    return out


def _report_sizes(report: Report, sizes: dict[str, float], mode: str) -> None:
    for table, b in sizes.items():
        print(f"{table:<18} {b:6.1f} B per row ({'compressed' if mode == 'timescaledb' else 'table + indexes'})")
        report.figure(f"{table} bytes/row", b, "B")
    if mode == "timescaledb":
        domain = max(sizes[t] for t in DOMAIN_TABLES)
        report.target(f"<= {TARGET_DOMAIN_B:.0f} B per domain reading", domain <= TARGET_DOMAIN_B)
        report.target(f"<= {TARGET_UPLINK_B:.0f} B per raw uplink", sizes["uplinks"] <= TARGET_UPLINK_B)


def _seed(url: str, args: argparse.Namespace, report: Report) -> None:
    migrate(url, tz=TZ)
    t0 = time.perf_counter()
    counts = seed_city(url, days=args.days, size=args.city, rollups=False)
    print(f"seeded {args.days} days of a {args.city} town in {time.perf_counter() - t0:.0f} s: {counts}")
    if args.sizes_only:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("SELECT rollups_build()")
        build_s = time.perf_counter() - t0
        conn.execute("ANALYZE")
    print(f"rollups built in {build_s:.1f} s")
    report.figure("rollup build", build_s, f"s for {args.days} days")


def _measure(url: str, args: argparse.Namespace) -> float:
    """Print before / after per endpoint, range and bucket; returns the worst p99 of the endpoints."""
    with psycopg.connect(url, autocommit=True) as conn:
        keys = {name: conn.execute(query).fetchone()[0] for name, (_, query, _) in ENDPOINTS.items()}  # type: ignore[index]
        end = conn.execute("SELECT max(time) FROM parking_events").fetchone()[0]  # type: ignore[index]
        days = (end - conn.execute("SELECT min(time) FROM parking_events").fetchone()[0]).days + 1  # type: ignore[index]
    print(f"keys {keys}; times in ms, median / p99 of {args.repeats}")
    key = create_key(url, role="operator", name="bench-history")
    worst = 0.0
    with (
        api_server(url, startup_timeout=180, STADTPULS_TIMEZONE=TZ) as base,
        httpx.Client(base_url=base, timeout=60, headers={"X-API-Key": key}) as client,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        for span in (d for d in RANGES if d <= days):
            start = end - timedelta(days=span)
            for bucket, width in WIDTHS.items():
                shown = []
                if not args.no_readings:
                    runs = max(3, args.repeats // 3) if span <= 30 else 1  # a long range from the readings: once
                    before = _stats(_raw_ms(conn, keys["lot"], start, end, width, runs))
                    shown.append(f"before {before[0]:8.1f} / {before[1]:8.1f}")
                for name, (path, _, buckets) in ENDPOINTS.items():
                    if bucket not in buckets:
                        continue
                    first = _api_ms(client, path.format(keys[name]), start, end, bucket, 1)
                    after = _api_ms(client, path.format(keys[name]), start, end, bucket, args.repeats)
                    if first is None or after is None:
                        shown.append(f"{name} refused")
                        continue
                    med, p99 = _stats(after)
                    worst = max(worst, p99)
                    shown.append(f"{name} {med:6.1f} / {p99:6.1f} (first {first[0]:6.1f})")
                print(f"{span:4d} days {bucket:>5}: " + "   ".join(shown))
    return worst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=365, help="days of the town to seed (a year by default)")
    p.add_argument("--city", default="medium", choices=("small", "medium", "large"))
    p.add_argument("--repeats", type=int, default=15, help="requests per range, bucket and endpoint")
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--database", help="measure this database, seeded before with --keep, instead of seeding one")
    p.add_argument("--sizes-only", action="store_true", help="only the bytes per reading (no rollups, no timings)")
    p.add_argument("--no-readings", action="store_true", help="leave out the buckets from the readings (before)")
    args = p.parse_args()
    report = Report("history")
    with contextlib.ExitStack() as stack:
        url = args.database or stack.enter_context(fresh_database(args.keep))
        if not args.database:
            _seed(url, args, report)
        with psycopg.connect(url, autocommit=True) as conn:
            mode = detect_mode(conn)
            if args.sizes_only:
                _report_sizes(report, bytes_per_reading(conn, mode), mode)
                report.write()
                return 0
        print(f"{mode}: {url.rsplit('/', 1)[-1]}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        worst = _measure(url, args)
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        with psycopg.connect(url, autocommit=True) as conn:
            sizes = bytes_per_reading(conn, mode)
        _report_sizes(report, sizes, mode)
        report.figure("worst p99 with rollups", worst, "ms")
        report.target(
            f"p99 < {TARGET_P99_MS:.0f} ms for every served range, bucket and endpoint", worst < TARGET_P99_MS
        )
        report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
