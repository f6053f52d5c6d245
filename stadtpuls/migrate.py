"""Numbered SQL migrations, applied in order and recorded in ``schema_migrations``.

A migration is ``NNNN_name.sql`` (both modes), or a pair ``NNNN_name.timescale.sql`` /
``NNNN_name.postgres.sql`` (one per mode), or both: the common part first, then the mode's part. The mode is
decided once per database, before anything is tried: TimescaleDB when the extension is installed, or available
*and* preloaded (creating it otherwise fails or kills the connection), plain PostgreSQL otherwise. Each migration
runs in its own transaction; a session advisory lock makes concurrent runs wait for each other, so running twice,
or from two processes at once, applies each migration once.

After the migrations, :func:`migrate` gives each service role of ``0007_roles`` (``stadtpuls_ingest``,
``stadtpuls_api``, ``stadtpuls_grafana``) and ``0015_alert_summaries`` (``stadtpuls_alerts``) whose password is
passed LOGIN and that password, sent as a SCRAM verifier computed on the client (the clear text never reaches
the server or its statement log).

Tokens in the SQL: ``@TZ@`` (reporting time zone, a quoted literal), ``@RAW_RETENTION_DAYS@``,
``@COMPRESS_AFTER_DAYS@`` (integers), ``@SILENT_FACTOR@`` (report intervals after which a reading is stale,
:data:`stadtpuls.schema.SILENT_FACTOR`).

Exceptions::

    MigrationError      a migration failed (attributes: version, name)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg
from psycopg import sql

from .logs import get_logger
from .schema import SILENT_FACTOR

__all__ = [
    "SERVICE_ROLES",
    "Migration",
    "MigrationError",
    "MigrationResult",
    "detect_mode",
    "migrate",
    "migrations",
    "set_role_passwords",
]

Mode = Literal["timescaledb", "postgresql"]
LOCK_KEY = 0x5354_4144_5450  # "STADTP"
log = get_logger("stadtpuls.migrate")
#: the roles the services connect as (created by 0007_roles.sql), by service
SERVICE_ROLES = {
    "ingest": "stadtpuls_ingest",
    "api": "stadtpuls_api",
    "grafana": "stadtpuls_grafana",
    "alerts": "stadtpuls_alerts",  # created by 0015_alert_summaries
}


class MigrationError(Exception):
    def __init__(self, version: int, name: str, cause: Exception) -> None:
        super().__init__(f"migration {version:04d}_{name} failed: {cause}")
        self.version = version
        self.name = name


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql_by_mode: dict[str, str]  # "any" | "timescale" | "postgres" -> SQL text

    def text(self, mode: Mode) -> str:
        own = self.sql_by_mode.get("timescale" if mode == "timescaledb" else "postgres", "")
        return "\n".join(part for part in (self.sql_by_mode.get("any", ""), own) if part)


@dataclass(frozen=True)
class MigrationResult:
    mode: Mode
    applied: list[str]
    already: int


_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|postgres))?\.sql$")


def migrations() -> list[Migration]:
    found: dict[int, tuple[str, dict[str, str]]] = {}
    for entry in resources.files("stadtpuls.migrations").iterdir():
        m = _NAME.match(entry.name)
        if not m:
            continue
        version, name, variant = int(m.group(1)), m.group(2), m.group(3) or "any"
        found.setdefault(version, (name, {}))[1][variant] = entry.read_text(encoding="utf-8")
    return [Migration(v, n, texts) for v, (n, texts) in sorted(found.items())]


def detect_mode(conn: psycopg.Connection) -> Mode:
    """TimescaleDB if installed, or available and preloaded (then created); else plain PostgreSQL."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return "timescaledb"
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if available and preload and "timescaledb" in str(preload[0]):
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return "timescaledb"
    return "postgresql"


def _render(text: str, conn: psycopg.Connection, *, tz: str, raw_retention_days: int, compress_days: int) -> str:
    return (
        text.replace("@TZ@", sql.Literal(tz).as_string(conn))
        .replace("@RAW_RETENTION_DAYS@", str(int(raw_retention_days)))
        .replace("@COMPRESS_AFTER_DAYS@", str(int(compress_days)))
        .replace("@SILENT_FACTOR@", repr(float(SILENT_FACTOR)))
    )


def migrate(
    url: str,
    *,
    tz: str = "Europe/Berlin",
    raw_retention_days: int = 365,
    compress_after_days: int = 7,
    role_passwords: dict[str, str] | None = None,
    upto: int | None = None,
) -> MigrationResult:
    """Apply every pending migration to the database at ``url`` (only those up to version ``upto`` when given),
    then :func:`set_role_passwords` with ``role_passwords`` (service -> password, see :data:`SERVICE_ROLES`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version integer PRIMARY KEY, name text NOT NULL, mode text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            mode = detect_mode(conn)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            applied: list[str] = []
            for mig in migrations():
                if mig.version in done or (upto is not None and mig.version > upto):
                    continue
                text = _render(
                    mig.text(mode),
                    conn,
                    tz=tz,
                    raw_retention_days=raw_retention_days,
                    compress_days=compress_after_days,
                )
                try:
                    with conn.transaction():
                        conn.execute(text.encode())  # several statements: simple query protocol
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, mode) VALUES (%s, %s, %s)",
                            (mig.version, mig.name, mode),
                        )
                except psycopg.Error as e:
                    raise MigrationError(mig.version, mig.name, e) from e
                applied.append(f"{mig.version:04d}_{mig.name}")
                log.info("migration applied", extra={"version": mig.version, "migration": mig.name, "mode": mode})
            set_role_passwords(conn, role_passwords or {})
            return MigrationResult(mode=mode, applied=applied, already=len(done))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def set_role_passwords(conn: psycopg.Connection, passwords: dict[str, str]) -> list[str]:
    """``ALTER ROLE ... LOGIN PASSWORD`` for each service in ``passwords``; returns the roles changed."""
    changed = []
    for service, password in passwords.items():
        role = SERVICE_ROLES[service]
        verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
        )
        changed.append(role)
        log.info("role password set", extra={"role": role})
    return changed
