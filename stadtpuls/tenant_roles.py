"""A town's own database reader, for its Grafana: ``stadtpuls tenants grafana-role SLUG``.

:func:`ensure_town_reader` creates (or updates) the LOGIN role ``stadtpuls_grafana_<slug>`` (``-`` becomes ``_``),
makes it a member of ``stadtpuls_town`` (migration 0016: SELECT on what the dashboards query, each row admitted
only for the role's own tenant), sets its ``search_path`` to ``town, public`` (the time series are read through
the town-filtered views of schema ``town`` under the names the dashboards use) and records it in
``tenants.db_role``. The password is sent as a SCRAM verifier computed here, never as clear text.

Roles belong to the server: several hub databases on one server share ``stadtpuls_grafana_<slug>``; each
database records it for its own tenant. Creating roles needs CREATEROLE (the schema owner of the compose file
is a superuser).

Exceptions::

    TownRoleError       the tenant is unknown, its db_role names another role, or the role could read around the
                        town filter (another group, a grant on a table behind the town views) (attribute: slug)
"""

from __future__ import annotations

import argparse
import secrets
import sys

import psycopg
from psycopg import sql

__all__ = ["TOWN_GROUP", "TOWN_SCHEMA", "TownRoleError", "ensure_town_reader", "reader_role", "setup_grafana_role"]

#: the NOLOGIN group whose members are town readers (0016_tenant_rls.sql)
TOWN_GROUP = "stadtpuls_town"
#: the schema of the town-filtered views, first on a reader's search_path
TOWN_SCHEMA = "town"
ROLE_PREFIX = "stadtpuls_grafana_"


class TownRoleError(Exception):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


def reader_role(slug: str) -> str:
    """The town reader's role name for tenant ``slug``."""
    return ROLE_PREFIX + slug.replace("-", "_")


def ensure_town_reader(conn: psycopg.Connection, slug: str, password: str) -> str:
    """Create or update tenant ``slug``'s reader role with ``password``; returns the role name.

    Runs in the connection's transaction (the caller commits); idempotent: a second call sets the new password."""
    row = conn.execute("SELECT db_role FROM tenants WHERE slug = %s FOR UPDATE", (slug,)).fetchone()
    if row is None:
        raise TownRoleError(slug, f"unknown tenant {slug!r} (see `stadtpuls tenants list`)")
    role = reader_role(slug)
    if row[0] not in (None, role):
        raise TownRoleError(slug, f"tenant {slug!r} already reads as role {row[0]!r}, not {role!r}")
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    conn.execute(
        sql.SQL(
            "{} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD {}"
        ).format(sql.SQL("ALTER" if exists else "CREATE"), sql.Identifier(role), sql.Literal(verifier))
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(TOWN_GROUP), sql.Identifier(role)))
    conn.execute(
        sql.SQL("ALTER ROLE {} SET search_path = {}, public").format(sql.Identifier(role), sql.Identifier(TOWN_SCHEMA))
    )
    _check_only_town(conn, slug, role)
    conn.execute("UPDATE tenants SET db_role = %s, updated_at = now() WHERE slug = %s", (role, slug))
    return role


def _check_only_town(conn: psycopg.Connection, slug: str, role: str) -> None:
    """A town reader reads through the town group alone: another role's membership, or a grant on a table behind
    the town views (the time series have no row security), would show it every town."""
    groups = [
        r[0]
        for r in conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s AND g.rolname <> %s ORDER BY 1",
            (role, TOWN_GROUP),
        )
    ]
    if groups:
        raise TownRoleError(slug, f"role {role} is also a member of {', '.join(groups)}: revoke that first")
    around = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND to_regclass(format('public.%%I', c.relname)) IS NOT NULL"
            " AND has_table_privilege(%s, format('public.%%I', c.relname), 'SELECT') ORDER BY 1",
            (TOWN_SCHEMA, role),
        )
    ]
    if around:
        raise TownRoleError(slug, f"role {role} may read public.{', public.'.join(around)} unfiltered: revoke that")


def _run(args: argparse.Namespace) -> int:
    from .commands import database_url
    from .settings import load

    url = args.database_url or database_url(load())
    generated = not args.password_stdin
    password = secrets.token_urlsafe(24) if generated else sys.stdin.readline().rstrip("\n")
    if not password:
        sys.stderr.write("stadtpuls: an empty password on stdin\n")
        return 2
    try:
        with psycopg.connect(url) as conn:
            role = ensure_town_reader(conn, args.slug, password)
    except TownRoleError as e:
        sys.stderr.write(f"stadtpuls: {e}\n")
        return 2
    except psycopg.errors.InsufficientPrivilege as e:
        sys.stderr.write(f"stadtpuls: creating the role needs CREATEROLE: {e}\n")
        return 2
    sys.stdout.write(f"{role}\n")
    if generated:
        sys.stdout.write(f"{password}\n")
        sys.stderr.write("the password is shown only now: put it in the town's Grafana environment\n")
    sys.stderr.write(f"tenant {args.slug!r} reads as {role} (member of {TOWN_GROUP})\n")
    return 0


def setup_grafana_role(p: argparse.ArgumentParser) -> None:
    """Arguments of ``stadtpuls tenants grafana-role``: register with
    ``setup_grafana_role(sub.add_parser("grafana-role", help=...))`` in the tenants command."""
    p.description = (
        "Create or update the town's database reader role for its Grafana (member of stadtpuls_town: the town's "
        "rows only) and record it in tenants.db_role. Prints the role and, unless --password-stdin, a new password."
    )
    p.add_argument("slug", help="the tenant's slug")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--database-url", help="owner's database URL (default: STADTPULS_DATABASE_URL)")
    p.set_defaults(func=_run)
