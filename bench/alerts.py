"""One alert evaluation round over a large town: every default rule, set-based SQL, on plain PostgreSQL.

A fresh database gets ``--devices`` devices (70 % bins, 30 % parking spaces in lots of 100) with ``--days`` of
data: ``--per-day`` uplinks and readings a day per device (with their radio figures, batteries and fills), the
devices' state, a few frame-counter gaps and dead letters; some devices silent, draining or filling, so every
rule has candidates. The rows are written with ``INSERT ... SELECT generate_series`` and the tables analysed.
Then the default rules are evaluated at the data's end (the first round opens the alerts and builds the day
summaries of every device, ``device_daily``), and ``--rounds`` times more two hours apart, where every rule is due
again (the steady state: little changes), each followed a minute later by a round in which only the rules
evaluated every round are due (``device_silent``, ``frame_loss``, ``parking_stuck``, ``ingest_lag``,
``dead_letters``; ``radio_worse`` runs hourly, ``battery_low`` and ``bin_full`` every 10 minutes). Before each
timed round the ingest's minute is written: the uplinks and readings of the devices whose report falls in the
minute before it, with their ``device_state`` touched as the writer does, so every round also brings those
devices' day summaries up to date (at the default 60 s round interval). Figures are medians. Target: a round of
every rule <= 1 s for 100,000 devices with a month of data.

After the first round the database is vacuumed and analysed (as autovacuum would after its bulk writes).
``--keep`` keeps the seeded database as it is after the first round (seeding 100,000 devices takes half an hour)
and measures the rounds on a copy of it; ``--database URL`` measures the rounds on a fresh copy of such a database
without seeding (so every run starts from the same state; the copy is dropped afterwards).

    python -m bench.alerts [--devices 100000] [--days 30] [--per-day 4] [--rounds 5] [--keep] [--database URL]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.kinds import default_rules
from stadtpuls.alerts.store import save_rule
from stadtpuls.migrate import migrate

from ._report import Report
from .api import fresh_database

END = datetime(2026, 3, 31, 12, tzinfo=UTC)
TARGET_S = 1.0

_FILL = """
INSERT INTO sites (site_id, kind, threshold_pct)
SELECT 'bin-' || i, 'bin', 80 FROM generate_series(0, %(bins)s - 1) i;
INSERT INTO sites (site_id, kind, capacity)
SELECT 'lot-' || l, 'lot', 100 FROM generate_series(0, (%(spaces)s - 1) / 100) l;
INSERT INTO devices (dev_eui, codec, site_id, report_interval_s)
SELECT lpad(to_hex(i), 16, '0'), CASE WHEN i < %(bins)s THEN 'dragino/ldds75' ELSE 'nwave/nps405' END,
       CASE WHEN i < %(bins)s THEN 'bin-' || i END, %(interval)s
FROM generate_series(0, %(devices)s - 1) i;
INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, rssi, snr, sf, lns, received_at)
SELECT t, dedup_key_of(gen_random_uuid()), lpad(to_hex(i), 16, '0'), k, 2,
       -90 - (i %% 30) - CASE WHEN i %% 997 = 0 AND k > %(half)s THEN 12 ELSE 0 END, 5 - (i %% 10), 7 + (i %% 3),
       'tts', t + interval '2 s'
FROM generate_series(0, %(devices)s - 1) i, generate_series(0, %(steps)s - 1) k,
     LATERAL (SELECT %(start)s::timestamptz + make_interval(secs => k * %(interval)s + (i %% 600))) x(t)
WHERE NOT (i %% 1009 = 0 AND k > %(steps)s - 10);
INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, battery_v)
SELECT t, lpad(to_hex(i), 16, '0'), 'bin-' || i, ((k + i) %% (%(per_day)s * 7)) * 90.0 / (%(per_day)s * 7),
       3.6 - CASE WHEN i %% 499 = 0 THEN 0.5 * k / %(steps)s ELSE 0 END
FROM generate_series(0, %(bins)s - 1) i, generate_series(0, %(steps)s - 1) k,
     LATERAL (SELECT %(start)s::timestamptz + make_interval(secs => k * %(interval)s + (i %% 600))) x(t)
WHERE NOT (i %% 1009 = 0 AND k > %(steps)s - 10);
INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied, battery_v)
SELECT t, lpad(to_hex(i), 16, '0'), NULL, 'lot-' || ((i - %(bins)s) / 100),
       CASE WHEN i %% 211 = 0 THEN true ELSE (k + i) %% 3 = 0 END, 3.6
FROM generate_series(%(bins)s, %(devices)s - 1) i, generate_series(0, %(steps)s - 1) k,
     LATERAL (SELECT %(start)s::timestamptz + make_interval(secs => k * %(interval)s + (i %% 600))) x(t)
WHERE NOT (i %% 1009 = 0 AND k > %(steps)s - 10);
INSERT INTO device_state (dev_eui, last_f_cnt, last_time, updated_at)
SELECT dev_eui, max(f_cnt), max(time), now() - interval '1 hour' FROM uplinks GROUP BY dev_eui;
UPDATE device_state SET last_join = %(end)s - interval '2 hours' WHERE dev_eui IN (
    SELECT lpad(to_hex(i), 16, '0') FROM generate_series(0, %(devices)s - 1, 4999) i);
INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to)
SELECT %(end)s - interval '3 hours', lpad(to_hex(i), 16, '0'), 1000, 1020
FROM generate_series(7, %(devices)s - 1, 3001) i;
INSERT INTO dead_letters (received_at, stage, reason)
SELECT %(end)s - make_interval(secs => s), 'codec', 'payload too short' FROM generate_series(1, 300) s;
"""


# The minute before %(at)s: the devices whose report falls in it (every device reports every %(interval)s s).
_MINUTE = """
WITH due AS (
    SELECT i, lpad(to_hex(i), 16, '0') AS dev_eui, %(at)s::timestamptz - interval '1 s' AS t
    FROM generate_series(0, %(devices)s - 1) i
    WHERE i %% (%(interval)s / 60) = (extract(epoch FROM %(at)s::timestamptz)::bigint / 60) %% (%(interval)s / 60)
), up AS (
    INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, rssi, snr, sf, lns, received_at)
    SELECT t, dedup_key_of(gen_random_uuid()), dev_eui, 100000 + extract(epoch FROM t)::bigint / %(interval)s, 2,
           -90 - (i %% 30), 5 - (i %% 10), 7 + (i %% 3), 'tts', t + interval '2 s'
    FROM due
), bins AS (
    INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, battery_v)
    SELECT t, dev_eui, 'bin-' || i, 40, 3.6 FROM due WHERE i < %(bins)s ON CONFLICT DO NOTHING
), spaces AS (
    INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied, battery_v)
    SELECT t, dev_eui, NULL, 'lot-' || ((i - %(bins)s) / 100), i %% 2 = 0, 3.6 FROM due WHERE i >= %(bins)s
    ON CONFLICT DO NOTHING
)
UPDATE device_state s SET last_time = due.t, last_f_cnt = 100000 + extract(epoch FROM due.t)::bigint / %(interval)s,
       updated_at = now()
FROM due WHERE s.dev_eui = due.dev_eui
"""


def ingest_minute(conn: psycopg.Connection, at: datetime, devices: int, per_day: int) -> None:
    """What the ingest writes in the minute before ``at`` (outside the timed round)."""
    conn.execute(_MINUTE, {"at": at, "devices": devices, "bins": devices * 7 // 10, "interval": 86400 // per_day})


def build(url: str, devices: int, days: int, per_day: int) -> dict[str, int]:
    bins = devices * 7 // 10
    interval = 86400 // per_day
    steps = days * per_day
    params = {
        "devices": devices,
        "bins": bins,
        "spaces": devices - bins,
        "interval": interval,
        "steps": steps,
        "half": steps - 7 * per_day,
        "per_day": per_day,
        "start": END - timedelta(days=days),
        "end": END,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _FILL.split(";\n"):
            if statement.strip():
                conn.execute(statement, params)
        conn.execute("DELETE FROM alert_summary_state")  # the first round summarises what is stored, as at install
        conn.execute("VACUUM ANALYZE")
        with conn.transaction():
            for rule in default_rules(battery_low_v=3.2, battery_low_pct=20):
                save_rule(conn, rule)
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("uplinks", "bin_levels")}  # type: ignore[index]
    return counts


def _copy(url: str, name: str) -> str:
    """A copy of the database at ``url`` named ``name`` (file copy: no connection to it may be open)."""
    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY file_copy").format(
                psycopg.sql.Identifier(name), psycopg.sql.Identifier(urlsplit(url).path.lstrip("/"))
            )
        )
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def _drop(url: str) -> None:
    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True) as conn:
        name = urlsplit(url).path.lstrip("/")
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def _shape(url: str) -> tuple[int, int]:
    """Devices and uplinks a day of a database seeded by :func:`build`."""
    with psycopg.connect(url, autocommit=True) as conn:
        devices, interval = conn.execute("SELECT count(*), min(report_interval_s) FROM devices").fetchone()  # type: ignore[misc]
    return devices, 86400 // interval


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def rounds(url: str, devices: int, per_day: int, n: int) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """The timed rounds after the first: ``n`` of every rule, each followed by one of the every-round rules."""
    full: list[float] = []
    frequent: list[float] = []
    parts: dict[str, list[float]] = defaultdict(list)  # of the rounds of every rule
    with psycopg.connect(url, autocommit=True) as conn:
        for k in range(1, max(2, n) + 1):
            at = END + timedelta(hours=2 * k)  # every rule due again
            for at_, times in ((at, full), (at + timedelta(seconds=60), frequent)):
                ingest_minute(conn, at_, devices, per_day)
                t = time.perf_counter()
                result = evaluate(conn, now=at_, next_service=END + timedelta(hours=18))
                times.append(time.perf_counter() - t)
                if times is full:
                    for part, seconds in result.seconds.items():
                        parts[part].append(seconds)
        per_rule = conn.execute("SELECT rule_id, count(*) FROM alerts GROUP BY 1 ORDER BY 1").fetchall()
    print("alerts per rule: " + ", ".join(f"{r} {n}" for r, n in per_rule))
    return full, frequent, parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=4, help="uplinks and readings per device and day")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database (after its first round)")
    parser.add_argument("--database", help="measure a copy of this database, kept before with --keep, unseeded")
    args = parser.parse_args()
    report = Report("alerts")
    with contextlib.ExitStack() as stack:
        if args.database:
            seeded = args.database
            devices, per_day = _shape(seeded)
        else:
            seeded = stack.enter_context(fresh_database(args.keep))
            devices, per_day = args.devices, args.per_day
            migrate(seeded)
            t0 = time.perf_counter()
            counts = build(seeded, devices, args.days, per_day)
            print(f"built {devices:,} devices, {counts['uplinks']:,} uplinks, {counts['bin_levels']:,} bin readings "
                  f"in {time.perf_counter() - t0:.0f} s")  # fmt: skip
            with psycopg.connect(seeded, autocommit=True) as conn:
                t = time.perf_counter()
                first = evaluate(conn, now=END, next_service=END + timedelta(hours=18))
                first_s = time.perf_counter() - t
                # what autovacuum does after the first round's bulk writes (the day summaries of every device, their
                # health rows, the alerts): without statistics the planner takes those tables for empty
                conn.execute("VACUUM ANALYZE")
            print(f"first round {first_s:.3f} s (opens {sum(first.opened.values()):,} alerts)")
            report.figure("first round", first_s, "s")
            if args.keep:
                print(f"kept the seeded database: --database {seeded}")
        if args.keep or args.database:  # the rounds change the database: they run on a copy of the seeded one
            t0 = time.perf_counter()
            url = _copy(seeded, f"{urlsplit(seeded).path.lstrip('/')}_run_{os.getpid()}")
            stack.callback(_drop, url)
            print(f"measuring a copy of {urlsplit(seeded).path.lstrip('/')} (made in {time.perf_counter() - t0:.0f} s)")
            t0 = time.perf_counter()
            migrate(url)  # a database kept by an older tree gets this tree's migrations (outside the rounds)
            print(f"migrated the copy in {time.perf_counter() - t0:.1f} s")
        else:
            url = seeded
        print(f"{devices:,} devices; load average before the rounds {_load()}")
        full, frequent, parts = rounds(url, devices, per_day, args.rounds)
        print(f"load average after the rounds {_load()}")
    full_s, frequent_s = statistics.median(full), statistics.median(frequent)
    print(f"every rule due: median {full_s:.3f} s ({', '.join(f'{s:.3f}' for s in full)}); "
          f"only the every-round rules due: {frequent_s:.3f} s")  # fmt: skip
    medians = sorted(((statistics.median(s), part) for part, s in parts.items()), reverse=True)
    print("every rule due, median per part: " + ", ".join(f"{part} {s * 1000:.0f} ms" for s, part in medians))
    report.figure("round, every rule", full_s, "s")
    report.figure("round, frequent rules", frequent_s, "s")
    report.target(f"a round of every rule <= {TARGET_S:g} s for {devices:,} devices", full_s <= TARGET_S)
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
