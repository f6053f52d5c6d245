"""The alerts page in Debian's chromium against the real ``stadtpuls api``: list (open first), filter, acknowledge,
a device's radio figures, at 360 px and 1280 px."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper module beside the tests (tests are not a package)
from pagestest import ARTIFACTS, OPERATOR_KEY, new_page, running_api, wait_for  # noqa: E402

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.kinds import default_rules
from stadtpuls.alerts.store import save_rule

pytestmark = pytest.mark.browser


@pytest.fixture
def town(clean_db: str) -> str:
    """Four silent devices (one at a bin with a low battery, with uplinks), evaluated now."""
    now = datetime.now(UTC)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        for rule in default_rules(battery_low_v=3.2, battery_low_pct=20):
            save_rule(conn, rule)
        conn.execute("INSERT INTO sites (site_id, kind, threshold_pct) VALUES ('bin-7', 'bin', 80)")
        for i in range(4):
            dev = f"{0xC000000000000000 + i:016x}"
            conn.execute(
                "INSERT INTO devices (dev_eui, codec, site_id) VALUES (%s, 'dragino/ldds75', %s)",
                (dev, "bin-7" if i == 0 else None),
            )
            conn.execute(
                "INSERT INTO device_state (dev_eui, last_time) VALUES (%s, %s)", (dev, now - timedelta(hours=6))
            )
        conn.execute(
            """INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, rssi, snr, lns)
               SELECT %s - make_interval(hours => h), dedup_key_of(gen_random_uuid()), %s, 100 - h, -97, 4.5, 'tts'
               FROM generate_series(6, 20) h""",
            (now, f"{0xC000000000000000:016x}"),
        )
        conn.execute(
            "INSERT INTO bin_levels (time, dev_eui, site_id, battery_v) VALUES (%s, %s, 'bin-7', 3.0)",
            (now - timedelta(hours=6), f"{0xC000000000000000:016x}"),
        )
        evaluate(conn, now=now, next_service=now + timedelta(days=1))
    return clean_db


@pytest.fixture
def api(town: str, tmp_path: Path) -> Iterator[str]:
    with running_api(town, tmp_path) as base:
        yield base


@pytest.mark.parametrize("width", (360, 1280))
def test_alerts_page_lists_filters_and_acknowledges(browser: Any, api: str, width: int) -> None:
    context, page, problems = new_page(browser, api, width)
    page.goto(api + "/operator/alerts")
    assert "Enter the operator key" in page.locator("#list-message").inner_text()
    page.fill("#key", OPERATOR_KEY)
    page.click("#key-save")
    wait_for(lambda: page.locator("#alerts li.alert").count() == 5, 10, "alerts listed")
    states = page.eval_on_selector_all("#alerts li.alert", "els => els.map(e => e.dataset.state)")
    assert states == ["open"] * 5
    # filter by rule: the battery alert of the bin
    wait_for(lambda: page.locator("#rule option[value='battery-low']").count() == 1, 10, "rules loaded")
    page.select_option("#rule", "battery-low")
    wait_for(lambda: page.locator("#alerts li.alert").count() == 1, 10, "filtered by rule")
    assert "battery 3.00 V" in page.locator("#alerts li.alert").inner_text()
    page.select_option("#rule", "")
    page.fill("#site", "bin-7")
    page.click("#apply")
    wait_for(lambda: page.locator("#alerts li.alert").count() == 2, 10, "filtered by site")
    # acknowledge the silent bin sensor with a note
    item = page.locator("#alerts li.alert", has_text="device-silent")
    item.locator("input[type=text]").fill(f"checked at {width} px")
    item.locator("button.ack").click()
    wait_for(lambda: "acknowledged" in page.locator("#list-message").inner_text(), 10, "acknowledged")
    acked = page.locator("#alerts li.alert[data-state='acknowledged']")
    assert acked.count() == 1 and f"checked at {width} px" in acked.inner_text()
    # the device's radio figures and its last uplinks
    acked.locator("button.device-toggle").click()
    wait_for(lambda: acked.locator(".readings li").count() == 10, 10, "uplinks shown")
    assert "-97 dBm" in acked.locator(".readings li").first.inner_text()
    page.select_option("#state", "acknowledged")
    page.fill("#site", "")
    page.click("#apply")
    wait_for(lambda: page.locator("#alerts li.alert").count() == 1, 10, "acknowledged only")
    overflow = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    assert not overflow, "the page scrolls sideways"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"alerts-{width}.png"), full_page=True)
    assert not problems, problems
    context.close()
