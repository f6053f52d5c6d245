"""deploy/timescaledb/grafana-reader.sh: Grafana's read-only role, created and updated idempotently."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "timescaledb" / "grafana-reader.sh"

pytestmark = pytest.mark.skipif(not shutil.which("psql"), reason="needs psql")


def _run(db_url: str, role: str, password: str) -> subprocess.CompletedProcess[str]:
    u = urlsplit(db_url)
    env = {
        **os.environ,
        "PGHOST": u.hostname or "",
        "PGPORT": str(u.port or 5432),
        "PGUSER": u.username or "",
        "PGDATABASE": u.path.lstrip("/"),
        "GRAFANA_DB_USER": role,
        "GRAFANA_DB_PASSWORD": password,
    }
    if u.password:
        env["PGPASSWORD"] = u.password
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture
def role(db_url: str):  # type: ignore[no-untyped-def]
    name = f"grafana_test_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'DROP ROLE IF EXISTS "{name}"')


def _hash(db_url: str, role: str) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert row is not None
    return str(row[0])


def test_role_reads_every_table_and_writes_none(clean_db: str, role: str) -> None:
    proc = _run(clean_db, role, "first-pw")
    assert proc.returncode == 0, proc.stderr
    u = urlsplit(clean_db)
    as_role = u._replace(netloc=f"{role}:first-pw@{u.hostname}:{u.port or 5432}").geturl()
    try:
        conn = psycopg.connect(as_role)
    except psycopg.OperationalError as e:  # a server that only lets its own users in by a method we cannot use
        pytest.skip(f"cannot log in as the new role here: {e}")
    with conn:
        assert conn.execute("SELECT count(*) FROM bin_levels").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM bin_levels_hourly").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO sites (site_id, kind) VALUES ('x', 'bin')")


def test_running_twice_keeps_one_role_and_takes_the_new_password(db_url: str, role: str) -> None:
    assert _run(db_url, role, "first-pw").returncode == 0
    before = _hash(db_url, role)
    second = _run(db_url, role, "second-pw")
    assert second.returncode == 0, second.stderr
    assert _hash(db_url, role) != before and "second-pw" not in _hash(db_url, role)
    with psycopg.connect(db_url) as conn:
        flags = conn.execute("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        member = conn.execute("SELECT pg_has_role(%s, 'pg_read_all_data', 'member')", (role,)).fetchone()
    assert flags == (True, False) and member == (True,)


def test_missing_password_fails_clearly(db_url: str) -> None:
    proc = _run(db_url, "nobody", "")
    assert proc.returncode != 0 and "GRAFANA_DB_PASSWORD" in proc.stderr
