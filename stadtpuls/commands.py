"""Core subcommands: ``print-settings`` and ``migrate``."""

from __future__ import annotations

import argparse
import sys

from .logs import configure_logging
from .settings import Settings, load, masked

__all__ = ["database_url", "role_passwords", "setup_migrate", "setup_print_settings"]


def database_url(settings: Settings) -> str:
    """The configured database URL; exits with a clear message when none is set."""
    if settings.database_url is None:
        print("stadtpuls: STADTPULS_DATABASE_URL is not set (postgresql://user:pass@host:5432/db)", file=sys.stderr)
        raise SystemExit(2)
    return settings.database_url.get_secret_value()


def _print_settings(args: argparse.Namespace) -> int:
    for name, value in masked(load()).items():
        print(f"{name}={value}")
    return 0


def setup_print_settings(p: argparse.ArgumentParser) -> None:
    p.set_defaults(func=_print_settings)


def role_passwords(settings: Settings) -> dict[str, str]:
    """Service -> password for the roles ``migrate`` gives LOGIN (the ``STADTPULS_*_DB_PASSWORD`` that are set)."""
    given = {
        "ingest": settings.ingest_db_password,
        "api": settings.api_db_password,
        "grafana": settings.grafana_db_password,
        "alerts": settings.alerts_db_password,
    }
    return {service: secret.get_secret_value() for service, secret in given.items() if secret is not None}


def _migrate(args: argparse.Namespace) -> int:
    import psycopg

    from .migrate import MigrationError, migrate

    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    url = args.database_url or database_url(settings)
    try:
        result = migrate(
            url,
            tz=settings.timezone,
            raw_retention_days=settings.raw_retention_days,
            compress_after_days=settings.compress_after_days,
            role_passwords=role_passwords(settings),
        )
    except MigrationError as e:
        print(f"stadtpuls: {e}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as e:
        print(f"stadtpuls: cannot connect to the database: {e}", file=sys.stderr)
        return 1
    label = "TimescaleDB" if result.mode == "timescaledb" else "plain PostgreSQL (timescaledb extension not available)"
    print(f"mode: {label}")
    if result.applied:
        print("applied: " + ", ".join(result.applied))
    else:
        print(f"up to date ({result.already} migrations)")
    return 0


def setup_migrate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
    p.set_defaults(func=_migrate)
