"""API test fixtures: settings on the session database (cleaned per test), in-process clients, a seeder."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stadtpuls.api.main import create_app
from stadtpuls.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))  # the helper module beside the tests (tests are not a package)
from apitest import ApiClient, Seeder, fixed_now, make_settings  # noqa: E402
from pagestest import (  # noqa: E402
    ARTIFACTS,
    CHROMIUM_ARGS,
    LOTS,
    Publisher,
    ingest_service,
    running_api,
    seed_city,
    space_eui,
    wait_for,
)


@pytest.fixture(autouse=True)
def one_now() -> Iterator[None]:
    """Every API test reads one fixed "now" (``apitest.fixed_now``)."""
    with fixed_now():
        yield


@pytest.fixture
def settings(clean_db: str) -> Settings:
    return make_settings(clean_db)


@pytest.fixture
def make_client() -> Iterator[Callable[..., ApiClient]]:
    """``make_client(settings, **create_app_options)`` -> a started :class:`ApiClient`; closed after the test."""
    made: list[ApiClient] = []

    def make(settings: Settings, **options: Any) -> ApiClient:
        c = ApiClient(create_app(settings, **options))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(settings: Settings, make_client: Callable[..., ApiClient]) -> ApiClient:
    return make_client(settings)


@pytest.fixture
def seed(clean_db: str) -> Iterator[Seeder]:
    s = Seeder(clean_db)
    try:
        yield s
    finally:
        s.close()


# Browser tests (test_*_browser.py): Debian chromium through Playwright, and the real ingest feeding the pages.
@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture(scope="module")
def ingest(city: str, project_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Publisher]:
    """``stadtpuls ingest`` running and proven to store uplinks; yields the publisher."""
    tmp = tmp_path_factory.mktemp("ingest")
    service = ingest_service(city, project_broker.url, tmp, f"pages-test-{uuid.uuid4().hex[:8]}")
    service.start()
    pub = Publisher(project_broker.url)
    try:
        # the last space of the last lot is the probe: publish until the ingest (still subscribing) stores one
        lot, space = len(LOTS) - 1, LOTS[-1][2] - 1

        def stored() -> bool:
            assert service.alive(), "ingest exited:\n" + service.log_tail()
            pub.parking(lot, space, False)
            with psycopg.connect(city, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM uplinks WHERE dev_eui = %s", (space_eui(lot, space),))
                return bool(row.fetchone()[0])  # type: ignore[index]

        wait_for(stored, 60, "first uplink stored by the ingest", interval=1.0)
        yield pub
    finally:
        pub.close()
        service.stop()


# The pages' browser tests: the seeded city (pagestest.seed_city) and a real `stadtpuls api` on it, per module.
@pytest.fixture(scope="module")
def city(db_url: str) -> str:
    seed_city(db_url)
    return db_url


@pytest.fixture(scope="module")
def api(city: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_api(city, tmp_path_factory.mktemp("api")) as base:
        yield base
