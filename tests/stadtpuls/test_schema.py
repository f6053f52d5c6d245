"""The description of the stored tables (stadtpuls/schema.py) against the migrated database, and the NOTIFY payload."""

from __future__ import annotations

import psycopg
import pytest

from stadtpuls.schema import INGEST_TABLES, READING_TABLES, Table, notify_counts, notify_payload

#: the PostgreSQL type each binary COPY kind is written as (psycopg's binary COPY applies no casts)
PG_TYPE = {
    "timestamptz": "timestamp with time zone",
    "uuid": "uuid",
    "text": "text",
    "bytea": "bytea",
    "jsonb": "jsonb",
    "bool": "boolean",
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
}


def _columns(url: str, table: str) -> dict[str, tuple[str, bool, bool]]:
    """column -> (type, nullable, has a default or is generated)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT column_name, data_type, is_nullable = 'YES',
                      column_default IS NOT NULL OR is_generated = 'ALWAYS' OR is_identity = 'YES'
               FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s""",
            (table,),
        ).fetchall()
    return {name: (dtype, nullable, filled) for name, dtype, nullable, filled in rows}


@pytest.mark.parametrize("table", INGEST_TABLES, ids=lambda t: t.name)
def test_every_described_column_exists_with_the_type_its_copy_kind_writes(db_url: str, table: Table) -> None:
    actual = _columns(db_url, table.name)
    assert actual, f"table {table.name} does not exist"
    assert {name: PG_TYPE[kind] for name, kind in table.columns} == {
        name: actual[name][0] if name in actual else "missing" for name in table.column_names
    }


@pytest.mark.parametrize("table", INGEST_TABLES, ids=lambda t: t.name)
def test_every_required_column_is_described(db_url: str, table: Table) -> None:
    """A NOT NULL column without a default that the writer does not copy would fail every insert."""
    required = {
        name for name, (_, nullable, filled) in _columns(db_url, table.name).items() if not nullable and not filled
    }
    assert required <= set(table.column_names)


def test_reading_tables_need_some_of_their_own_quantities_and_have_distinct_notify_keys() -> None:
    for table in READING_TABLES:
        assert table.needed and set(table.needed) <= set(table.quantities) <= set(table.column_names)
        assert table.parent is None or table.parent in table.column_names
    assert len({t.notify_key for t in READING_TABLES}) == len(READING_TABLES)


def test_notify_payload_names_every_reading_table_and_reads_back() -> None:
    payload = notify_payload({"parking_events": 3, "bin_levels": 1})
    assert notify_counts(payload) == {"bins": 1, "parking": 3, "passengers": 0, "environment": 0}
    assert notify_counts("not json") is None
    assert notify_counts("[1, 2]") is None
