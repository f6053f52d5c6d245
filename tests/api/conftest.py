"""API test fixtures: settings on the session database (cleaned per test), in-process clients, a seeder."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stadtpuls.api.main import create_app
from stadtpuls.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))  # the helper module beside the tests (tests are not a package)
from apitest import ApiClient, Seeder, fixed_now, make_settings  # noqa: E402


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
