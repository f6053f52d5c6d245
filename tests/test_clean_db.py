"""The ``clean_db`` fixture truncates only the tables a test touched: afterwards every data table is empty and every
sequence restarted, as if all had been truncated."""

from __future__ import annotations

import psycopg

from .conftest import empty_tables, touched_tables


def _sequence_states(conn: psycopg.Connection) -> dict[str, object]:
    rows = conn.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
    return dict(rows.fetchall())


def test_clean_db_leaves_nothing_touched(clean_db: str, data_tables: tuple[str, ...]) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        assert touched_tables(conn, data_tables) == []
        assert all(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone() == (0,) for t in data_tables)


def test_touched_tables_are_emptied_and_their_sequences_restarted(clean_db: str, data_tables: tuple[str, ...]) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        fresh = _sequence_states(conn)
        conn.execute("INSERT INTO sites (site_id, kind, name) VALUES ('lot-1', 'lot', 'Lot 1')")
        conn.execute(
            "INSERT INTO devices (dev_eui, codec, site_id) VALUES ('a1b2c3d4e5f60718', 'nwave/nps405', 'lot-1')"
        )
        conn.execute("INSERT INTO dead_letters (stage, reason) VALUES ('decode', 'x'), ('decode', 'y')")
        touched = touched_tables(conn, data_tables)
        assert set(touched) == {"sites", "devices", "dead_letters"}

        assert set(empty_tables(conn, data_tables)) == {"sites", "devices", "dead_letters"}
        assert all(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone() == (0,) for t in data_tables)
        assert _sequence_states(conn) == fresh
        assert touched_tables(conn, data_tables) == []


def test_a_table_emptied_by_the_test_is_truncated_when_its_sequence_was_used(
    clean_db: str, data_tables: tuple[str, ...]
) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("INSERT INTO dead_letters (stage, reason) VALUES ('decode', 'x')")
        conn.execute("DELETE FROM dead_letters")
        assert touched_tables(conn, data_tables) == ["dead_letters"]
        empty_tables(conn, data_tables)
        row = conn.execute("INSERT INTO dead_letters (stage, reason) VALUES ('decode', 'y') RETURNING id").fetchone()
        assert row == (1,)
