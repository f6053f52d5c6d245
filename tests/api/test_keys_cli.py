"""``stadtpuls keys create --tenant``: a key of one town, and a clear error for a town that does not exist."""

from __future__ import annotations

import psycopg

from ..conftest import Cli


def test_keys_create_with_tenant_gives_the_key_its_town_and_list_shows_it(clean_db: str, run_cli: Cli) -> None:
    assert run_cli(clean_db, "tenants", "add", "nordstadt", "--name", "Nordstadt").returncode == 0
    made = run_cli(clean_db, "keys", "create", "--name", "Bauhof Nord", "--tenant", "nordstadt")
    assert made.returncode == 0, made.stderr
    key_id = made.stdout.strip().split("_")[1]
    plain = run_cli(clean_db, "keys", "create", "--name", "hub depot")
    assert plain.returncode == 0, plain.stderr
    with psycopg.connect(clean_db) as conn:
        rows = dict(conn.execute("SELECT name, tenant FROM api_keys").fetchall())
    assert rows == {"Bauhof Nord": "nordstadt", "hub depot": "default"}
    listed = run_cli(clean_db, "keys", "list").stdout.splitlines()
    assert "TENANT" in listed[0]
    line = next(row for row in listed if row.startswith(key_id))
    assert "nordstadt" in line.split()


def test_keys_create_for_an_unknown_tenant_is_refused_and_stores_nothing(clean_db: str, run_cli: Cli) -> None:
    made = run_cli(clean_db, "keys", "create", "--name", "x", "--tenant", "atlantis")
    assert made.returncode == 2 and made.stdout == ""
    assert made.stderr.strip() == "stadtpuls keys: no tenant 'atlantis' (stadtpuls tenants add atlantis --name ...)"
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (0,)
