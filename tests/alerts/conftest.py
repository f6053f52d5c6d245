"""Alert test fixtures: the session database (emptied per test) with the default rules, and a planter."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from stadtpuls.alerts.kinds import default_rules
from stadtpuls.alerts.store import save_rule

sys.path.insert(0, str(Path(__file__).parent))  # the helper module beside the tests (tests are not a package)
from alertstest import Planter  # noqa: E402


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(clean_db, autocommit=True) as c:
        with c.transaction():
            for rule in default_rules(battery_low_v=3.2, battery_low_pct=20):
                save_rule(c, rule)
        yield c


@pytest.fixture
def plant(conn: psycopg.Connection) -> Planter:
    return Planter(conn)
