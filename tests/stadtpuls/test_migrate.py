from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.ingest.pipeline import Pipeline
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.writer import Writer
from stadtpuls.migrate import detect_mode, migrate, migrations
from stadtpuls.schema import ROLLUP_TABLES
from stadtpuls.simulators import SimConfig, Simulation, TruthWriter, build_city, registry_yaml
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink
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
APP = "00000000-0000-0000-0000-00000000000a"
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
    key = stored_key(uuid.uuid4().bytes)
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
    with psycopg.connect(url) as conn:  # this tree's writer stores 64-bit dedup keys (migration 0017)
        for table in ("uplinks", "uplink_decoded"):
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN dedup_key TYPE bigint USING 0")
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


REKEY_FLEET = """
sites:
  - {site_id: lot-1, kind: lot, capacity: 5}
  - {site_id: space-1, kind: space, parent_id: lot-1}
  - {site_id: space-2, kind: space, parent_id: lot-1}
devices:
  - {dev_eui: "1000000000000001", codec: nwave/nps405, site_id: space-1}
  - {dev_eui: "1000000000000002", codec: nwave/nps405, site_id: space-2}
"""


def _primary_key(conn: psycopg.Connection, table: str) -> list[str]:
    return [
        c
        for (c,) in conn.execute(
            """SELECT a.attname FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
               WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.ord""",
            (table,),
        )
    ]


def test_uuid_dedup_keys_become_64_bit_keys_in_place_and_still_refuse_redeliveries(new_database) -> None:
    """A database at 0016 with uplinks and kept objects under 16-byte keys: 0017 keeps every row, each key folded
    as the ingest folds it, and a redelivery of an uplink stored before the change is still refused."""
    url = new_database()
    migrate(url, upto=16)
    t0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    devs = ("1000000000000001", "1000000000000002")
    ids = [uuid.uuid4() for _ in range(40)]
    # the same key at two times (a network server id seen again later) is two rows, before and after
    rows = [(t0 + timedelta(minutes=k), ids[k], devs[k % 2], k) for k in range(40)]
    rows.append((t0 + timedelta(hours=5), ids[0], devs[0], 99))
    with psycopg.connect(url) as conn:
        assert not apply(conn, parse_text(REKEY_FLEET, "yaml")).errors
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, payload, lns)"
                " VALUES (%s, %s, %s, %s, 1, '\\x01', 'chirpstack-v4')",
                rows,
            )
            cur.executemany(
                "INSERT INTO uplink_decoded (time, dedup_key, dev_eui, codec_id, codec_version, data)"
                " VALUES (%s, %s, %s, 'city/space', 1, '{}')",
                [r[:3] for r in rows[:10]],
            )
    assert migrate(url).applied[0] == "0017_compact_layout"
    want = sorted((t, stored_key(key.bytes), dev) for t, key, dev, _ in rows)
    with psycopg.connect(url) as conn:
        got = conn.execute("SELECT time, dedup_key, dev_eui FROM uplinks ORDER BY 1, 2, 3").fetchall()
        assert got == want  # every row, its key folded in SQL exactly as in Python
        kept = conn.execute("SELECT time, dedup_key, dev_eui FROM uplink_decoded ORDER BY 1, 2, 3").fetchall()
        assert kept == sorted(want[:10])
        for table in ("uplinks", "uplink_decoded"):
            assert _primary_key(conn, table) == ["dev_eui", "time", "dedup_key"]
        indexes = {i for (i,) in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'uplinks'")}
        assert "uplinks_dev_time_idx" not in indexes
        columns = (
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = 'uplinks' ORDER BY ordinal_position"
        )
        assert conn.execute(columns, ("town",)).fetchall() == conn.execute(columns, ("public",)).fetchall()
        pipeline = Pipeline(load_registry(conn))

    def deliver(when: datetime, key: uuid.UUID, dev: str, f_cnt: int) -> tuple[int, int]:
        msg = chirpstack_uplink(
            dev_eui=dev,
            application_id=APP,
            time=when,
            f_port=1,
            payload=b"\x01",
            f_cnt=f_cnt,
            deduplication_id=str(key),
        )
        prepared = pipeline.prepare([chirpstack_topic(APP, dev)], [orjson.dumps(msg)], time.time())
        result = writer.write(prepared.batch)
        return result.stored, result.duplicates

    writer = Writer(url)
    try:
        assert deliver(*rows[7]) == (0, 1)  # stored under its 16-byte key before the migration
        assert deliver(t0 + timedelta(hours=6), uuid.uuid4(), devs[1], 100) == (1, 0)
    finally:
        writer.close()
    assert migrate(url).applied == []
