from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.writer import Writer
from stadtpuls.migrate import detect_mode, migrate, migrations
from stadtpuls.schema import ROLLUP_TABLES
from stadtpuls.simulators import SimConfig, Simulation, TruthWriter, build_city, registry_yaml
from stadtpuls.simulators.timebase import DAY_US, parse_start

TABLES = {
    "sites",
    "devices",
    "api_keys",
    "uplinks",
    "bin_levels",
    "parking_events",
    "passenger_counts",
    "environment_readings",
    "dead_letters",
    "fcnt_gaps",
    "device_state",
    "schema_migrations",
}
HOURLY = {"uplinks_hourly", "bin_levels_hourly", "parking_hourly", "passengers_hourly", "environment_hourly"}


def _schema(url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            """SELECT table_name, column_name, data_type FROM information_schema.columns
               WHERE table_schema = 'public' ORDER BY 1, 2"""
        ).fetchall()


def test_migrate_creates_schema_on_plain_postgresql(new_database) -> None:
    url = new_database()
    result = migrate(url)
    assert result.mode in ("postgresql", "timescaledb")
    assert [a.split("_", 1)[0] for a in result.applied] == [f"{m.version:04d}" for m in migrations()]
    names = {t for t, _, _ in _schema(url)}
    assert TABLES <= names
    assert HOURLY <= names


def test_migrate_twice_changes_nothing(new_database) -> None:
    url = new_database()
    migrate(url)
    before = _schema(url)
    second = migrate(url)
    assert second.applied == []
    assert second.already == len(migrations())
    assert _schema(url) == before


def test_migrate_from_two_processes_at_once_applies_each_once(new_database) -> None:
    url = new_database()
    results = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(url))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r.applied) for r in results) == [0, len(migrations())]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(migrations()),)


def test_mode_is_plain_postgresql_without_timescaledb(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        has_ext = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        mode = detect_mode(conn)
    assert mode == ("timescaledb" if has_ext else "postgresql")


def test_unique_key_rejects_duplicate_uplink(clean_db: str) -> None:
    key = uuid.uuid4()
    t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    row = (t, key, "0011223344556677", 5, 1, b"\x01", "chirpstack-v4")
    with psycopg.connect(clean_db) as conn:
        insert = """INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, payload, lns)
                    VALUES (%s, %s, %s, %s, %s, %s, %s)"""
        conn.execute(insert, row)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(insert, row)


def test_devices_reject_malformed_dev_eui(clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO devices (dev_eui, codec) VALUES ('XYZ', 'netvox/r718x')")


def test_hourly_view_buckets_in_reporting_time_zone(clean_db: str) -> None:
    # 2026-03-29 is the day of the change to summer time in Berlin: 00:30 UTC is 01:30 CET -> bucket 01:00 CET.
    t = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    with psycopg.connect(clean_db) as conn:
        conn.execute(
            "INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct) VALUES (%s, 'aa00000000000001', 'b1', 40)",
            (t,),
        )
        bucket, fill = conn.execute("SELECT bucket, fill_last FROM bin_levels_hourly").fetchone()
    assert bucket == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    assert fill == 40


@pytest.mark.timescaledb
def test_timescaledb_creates_hypertables_and_policies(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
        jobs = conn.execute("SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL")
        assert {"uplinks", "bin_levels", "parking_events", "passenger_counts"} <= hypertables
        assert jobs.fetchone()[0] >= 10


def test_dead_letters_written_before_0004_are_merged_per_message(new_database) -> None:
    url = new_database()
    migrate(url)
    with psycopg.connect(url) as conn:  # back to the schema before 0004, with a message dead-lettered three times
        conn.execute("DROP INDEX dead_letters_message_key_idx")
        conn.execute(
            "ALTER TABLE dead_letters DROP COLUMN message_key, DROP COLUMN repeats, DROP COLUMN last_received_at"
        )
        conn.execute("DELETE FROM schema_migrations WHERE version = 4")
        t = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
        for minutes, payload in ((0, b"{broken"), (5, b"{broken"), (9, b"{other"), (20, b"{broken")):
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, stage, reason, payload)"
                " VALUES (%s, 'v3/a@t/devices/d/up', 'envelope', 'not JSON', %s)",
                (t.replace(minute=minutes), payload),
            )
    assert migrate(url).applied == ["0004_dead_letter_repeats"]
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT payload, received_at, repeats, last_received_at FROM dead_letters ORDER BY received_at"
        ).fetchall()
    assert rows == [(b"{broken", t, 3, t.replace(minute=20)), (b"{other", t.replace(minute=9), 1, None)]


def test_open_data_migration_numbers_the_sites_that_exist(new_database) -> None:
    url = new_database()
    migrate(url)
    with psycopg.connect(url) as conn:  # back to the schema before 0006, with sites already registered
        conn.execute("DROP INDEX sites_public_id_idx")
        conn.execute(
            "ALTER TABLE sites DROP COLUMN public_id, DROP COLUMN lot_type, DROP COLUMN purpose,"
            " DROP COLUMN park_and_ride, DROP COLUMN address, DROP COLUMN opening_hours, DROP COLUMN has_fee,"
            " DROP COLUMN fee_description, DROP COLUMN operator_name, DROP COLUMN public_url,"
            " DROP COLUMN seated_capacity, DROP COLUMN standing_capacity, DROP COLUMN gtfs_route_id"
        )
        conn.execute("DELETE FROM schema_migrations WHERE version = 6")
        conn.execute("INSERT INTO sites (site_id, kind) VALUES ('a', 'lot'), ('b', 'lot'), ('c', 'line')")
    assert migrate(url).applied == ["0006_open_data"]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sites (site_id, kind) VALUES ('d', 'lot')")
        ids = [r[0] for r in conn.execute("SELECT public_id FROM sites ORDER BY site_id").fetchall()]
    assert len(set(ids)) == 4 and None not in ids


@pytest.mark.timescaledb
def test_timescaledb_rolls_days_up_from_the_hourly_hypertable(timescaledb: str) -> None:
    with psycopg.connect(timescaledb) as conn:
        hypertables = {r[0] for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")}
        caggs = dict(
            conn.execute(
                "SELECT view_name, hypertable_name FROM timescaledb_information.continuous_aggregates"
            ).fetchall()
        )
    assert {"parking_lot_hourly", "line_load_hourly"} <= hypertables
    assert caggs["parking_lot_daily"] == "parking_lot_hourly" and caggs["line_load_daily"] == "line_load_hourly"


def test_a_filled_one_town_database_becomes_tenant_default_with_every_row_kept(new_database) -> None:
    """A database at the schema before tenants (0013), filled by a simulated day of the small town through the
    real pipeline and writer, keeps every row of every table when 0014 makes it tenant ``default``."""
    url, scratch = new_database(), new_database()
    migrate(url, upto=13)
    migrate(scratch)
    city = build_city("small", 4, "mixed")
    with psycopg.connect(scratch) as conn:
        report = apply(conn, parse_text(registry_yaml(city), "yaml"))
        assert not report.errors, report.errors
    with psycopg.connect(scratch) as src, psycopg.connect(url) as conn:  # the registry, as the old schema holds it
        for table, order in (("sites", "parent_id IS NOT NULL, site_id"), ("devices", "dev_eui")):
            columns = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                    " ORDER BY ordinal_position",
                    (table,),
                )
            ]
            names = ", ".join(columns)
            with (
                src.cursor().copy(f"COPY (SELECT {names} FROM {table} ORDER BY {order}) TO STDOUT") as out,
                conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as into,
            ):
                for data in out:
                    into.write(data)
        conn.execute(
            "INSERT INTO api_keys (key_id, name, role, key_hash) VALUES ('op1', 'ops', 'operator', 'x'),"
            " ('ad1', 'hub', 'admin', 'y')"
        )
        registry = load_registry(conn)
    config = SimConfig(city="small", seed=4, start_us=parse_start("2026-03-02"), duration_us=DAY_US, fmt="mixed")
    messages = [(m.topic, m.payload) for m in Simulation(config, TruthWriter(), city).messages()]
    pipeline, writer = Pipeline(registry), Writer(url)
    for k in range(0, len(messages), 2000):
        chunk = messages[k : k + 2000]
        writer.write(pipeline.prepare([t for t, _ in chunk], [p for _, p in chunk], time.time()).batch)
    writer.close()

    def counts() -> dict[str, int]:
        with psycopg.connect(url) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                    " AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
                )
            ]
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]

    before = counts()
    assert before["uplinks"] > 1000 and before["parking_events"] > 100 and before["bin_levels"] > 100
    assert "tenants" not in before
    assert [a.split("_", 1)[0] for a in migrate(url).applied][0] == "0014"
    after = counts()
    derived = set(ROLLUP_TABLES) - {"rollup_dirty"}  # built from the readings by 0019_rollups_fine
    assert {t: n for t, n in after.items() if t in before and t not in derived} == {
        t: n for t, n in before.items() if t not in derived
    }
    assert all(after[t] > 0 for t in ("parking_lot_15min", "parking_lot_hourly", "bin_fill_hourly"))
    assert after["tenants"] == 1
    with psycopg.connect(url) as conn:
        for table in ("sites", "devices", "api_keys"):
            owners = conn.execute(f"SELECT tenant, count(*) FROM {table} GROUP BY 1").fetchall()
            assert owners == [("default", before[table])], table
