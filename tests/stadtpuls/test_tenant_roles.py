"""``ensure_town_reader`` and ``stadtpuls tenants grafana-role``: the town's LOGIN role, its group, its search path,
its record in tenants.db_role, and the errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from stadtpuls.cli import main
from stadtpuls.tenant_roles import TOWN_GROUP, TownRoleError, ensure_town_reader, reader_role


@pytest.fixture
def slug(clean_db: str) -> Iterator[str]:
    """A tenant with a slug unique to this test (its role belongs to the whole server); the role dropped after."""
    slug = f"nord-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(clean_db) as conn:
        conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, 'Nordstadt')", (slug,))
    yield slug
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(reader_role(slug))))


def _verifies(conn: psycopg.Connection, role: str, password: str) -> bool:
    """Whether the role's stored SCRAM-SHA-256 verifier was made from ``password`` (RFC 5802 keys), so the test
    holds where the server trusts local connections without a password."""
    row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert row is not None and str(row[0]).startswith("SCRAM-SHA-256$")
    iterations_salt, keys = str(row[0]).removeprefix("SCRAM-SHA-256$").split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server = hmac.digest(salted, b"Server Key", "sha256")
    return hashlib.sha256(client_key).digest() == stored_key and server == server_key


def _login(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 5432}"))


def test_reader_role_name_replaces_dashes() -> None:
    assert reader_role("bad-salz-uflen") == "stadtpuls_grafana_bad_salz_uflen"


def test_ensure_town_reader_creates_a_login_member_of_the_town_group(clean_db: str, slug: str) -> None:
    with psycopg.connect(clean_db) as conn:
        role = ensure_town_reader(conn, slug, "first-pw")
    assert role == reader_role(slug)
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT db_role FROM tenants WHERE slug = %s", (slug,)).fetchone() == (role,)
        attrs = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolinherit, rolconfig,"
            " pg_has_role(rolname, %s, 'MEMBER'), rolpassword IS NULL FROM pg_roles WHERE rolname = %s",
            (TOWN_GROUP, role),
        ).fetchone()
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()
    assert attrs == (True, False, False, False, False, True, ["search_path=town, public"], True, False)
    assert verifier is not None and str(verifier[0]).startswith("SCRAM-SHA-256$")
    with psycopg.connect(_login(clean_db, role, "first-pw")) as conn:
        assert conn.execute("SELECT current_user, current_schemas(false)").fetchone() == (role, ["town", "public"])


def test_ensure_town_reader_twice_changes_only_the_password(clean_db: str, slug: str) -> None:
    with psycopg.connect(clean_db) as conn:
        role = ensure_town_reader(conn, slug, "first-pw")
    with psycopg.connect(clean_db) as conn:
        assert _verifies(conn, role, "first-pw")
        assert ensure_town_reader(conn, slug, "second-pw") == role
        assert _verifies(conn, role, "second-pw") and not _verifies(conn, role, "first-pw")
        members = conn.execute(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = %s AND u.rolname = %s",
            (TOWN_GROUP, role),
        ).fetchone()
    assert members == (1,)


def test_unknown_tenant_and_a_foreign_role_are_refused(clean_db: str, slug: str) -> None:
    with psycopg.connect(clean_db) as conn:
        with pytest.raises(TownRoleError) as err:
            ensure_town_reader(conn, "nowhere", "pw")
        assert err.value.slug == "nowhere" and "unknown tenant" in str(err.value)
        conn.rollback()
        conn.execute("UPDATE tenants SET db_role = 'someone_else' WHERE slug = %s", (slug,))
        with pytest.raises(TownRoleError, match="already reads as role 'someone_else'"):
            ensure_town_reader(conn, slug, "pw")
        conn.rollback()
        assert not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (reader_role(slug),)).fetchone()


def _cli(argv: list[str]) -> int:
    """``stadtpuls tenants grafana-role ARGV`` through the command line's own entry point."""
    return main(["tenants", "grafana-role", *argv])


def test_cli_prints_the_role_and_a_generated_password_that_logs_in(
    clean_db: str, slug: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli([slug, "--database-url", clean_db]) == 0
    role, password = capsys.readouterr().out.splitlines()
    assert role == reader_role(slug) and len(password) >= 24
    with psycopg.connect(clean_db) as conn:
        assert _verifies(conn, role, password)
    with psycopg.connect(_login(clean_db, role, password)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)


def test_cli_reads_the_password_from_stdin_and_names_an_unknown_tenant(
    clean_db: str, slug: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert _cli([slug, "--password-stdin", "--database-url", clean_db]) == 0
    assert capsys.readouterr().out.splitlines() == [reader_role(slug)]
    with psycopg.connect(clean_db) as conn:
        assert _verifies(conn, reader_role(slug), "from-stdin")
    assert _cli(["nowhere", "--database-url", clean_db]) == 2
    assert "unknown tenant 'nowhere'" in capsys.readouterr().err


def test_a_role_that_could_read_around_the_town_filter_is_refused(clean_db: str, slug: str) -> None:
    """An existing role of the name that bypasses row security loses that; one in another group, or with a grant
    on a table behind the town views, is refused (and the tenant keeps no reader)."""
    role = reader_role(slug)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN BYPASSRLS").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON uplinks TO {}").format(sql.Identifier(role)))
    with psycopg.connect(clean_db) as conn:
        with pytest.raises(TownRoleError, match=r"may read public.uplinks unfiltered"):
            ensure_town_reader(conn, slug, "pw")
        conn.rollback()
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE SELECT ON uplinks FROM {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT stadtpuls_grafana TO {}").format(sql.Identifier(role)))
    with psycopg.connect(clean_db) as conn:
        with pytest.raises(TownRoleError, match="also a member of stadtpuls_grafana"):
            ensure_town_reader(conn, slug, "pw")
        conn.rollback()
        assert conn.execute("SELECT db_role FROM tenants WHERE slug = %s", (slug,)).fetchone() == (None,)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE stadtpuls_grafana FROM {}").format(sql.Identifier(role)))
    with psycopg.connect(clean_db) as conn:
        assert ensure_town_reader(conn, slug, "pw") == role
        bypass = conn.execute("SELECT rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    assert bypass == (False,)
