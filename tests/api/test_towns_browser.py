"""A town's parking page in Debian's chromium (Playwright, headless) at phone width, against the real
``stadtpuls api``: the town's name and colour, only the town's lots, and every API call under the town's prefix."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper module beside the tests (tests are not a package)
from pagestest import ARTIFACTS, LOTS, new_page, running_api, wait_for  # noqa: E402

pytestmark = pytest.mark.browser

TOWN_LOT = "lot-park"  # moved to the town "north"; the others stay with the hub's default town
BRAND = "Nordstadt <live>"


@pytest.fixture(scope="module")
def towns_api(city: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with psycopg.connect(city, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO tenants (slug, name, brand_name, colour) VALUES ('north', 'Nordstadt', %s, '#ffd23f')",
            (BRAND,),
        )
        conn.execute("UPDATE sites SET tenant = 'north' WHERE site_id = %s OR parent_id = %s", (TOWN_LOT, TOWN_LOT))
        conn.execute(
            "UPDATE devices d SET tenant = 'north' FROM sites s WHERE s.site_id = d.site_id AND s.tenant = 'north'"
        )
    with running_api(city, tmp_path_factory.mktemp("towns-api")) as base:
        yield base


def _lot_ids(page: Any) -> list[str]:
    ids: list[str] = page.locator("li.lot").evaluate_all("els => els.map((e) => e.dataset.lotId)")
    return ids


def test_a_towns_parking_page_shows_its_name_colour_and_only_its_lots_at_360_px(browser: Any, towns_api: str) -> None:
    context, page, problems = new_page(browser, towns_api, 360)
    api_calls: list[str] = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
    page.goto(towns_api + "/t/north/parking")
    page.wait_for_selector('#status[data-state="live"]')
    wait_for(lambda: _lot_ids(page) == [TOWN_LOT], 10, "the town's lot, and only it, on the page")
    assert page.title() == f"Free parking spaces · {BRAND}"
    assert page.locator(".site-header .brand").inner_text().strip() == BRAND  # shown as text, not markup
    header = page.evaluate("getComputedStyle(document.querySelector('.site-header')).backgroundColor")
    assert header == "rgb(255, 210, 63)"
    assert page.locator('.site-nav a[href="/t/north/buses"]').count() == 1
    assert api_calls and all("/api/v1/t/north/" in url for url in api_calls), api_calls
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "town-parking-360.png"), full_page=True)
    page.goto(towns_api + "/parking")  # the hub's page: every town's lots
    wait_for(lambda: sorted(_lot_ids(page)) == sorted(lot for lot, *_ in LOTS), 10, "every lot on the hub's page")
    assert page.title() == "Free parking spaces · stadtpuls"
    assert problems == []
    context.close()
