"""What ``make test-fast`` leaves out: the reliability suites, every test that builds a week of a town, the tests
that simulate a month and the 70,000-message packet-id wrap are ``slow``; the rest of their modules stays in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _collected(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode in (0, 5), proc.stdout + proc.stderr  # 5: nothing collected
    return {line for line in proc.stdout.splitlines() if "::" in line}


@pytest.mark.slow  # a pytest collection in a process of its own
def test_fast_selection_leaves_out_week_fixtures_and_reliability_suites() -> None:
    engine, panels, mqtt, evaluate, raw = (
        "tests/simulators/test_engine.py",
        "tests/dashboards/test_panels.py",
        "tests/reliability/test_mqtt_security.py",
        "tests/alerts/test_evaluate.py",
        "tests/simulators/test_mqtt_raw.py",
    )
    fast = _collected("-m", "not slow and not browser", engine, panels, mqtt, evaluate, raw)

    assert f"{engine}::test_same_seed_gives_byte_identical_message_and_truth_files" in fast
    assert f"{panels}::test_every_panel_has_an_expected_shape" in fast
    assert f"{engine}::test_every_uplink_reads_back_through_the_hub_envelope_parser" not in fast  # small_week
    assert f"{panels}::test_alert_panels_find_the_planted_faults" not in fast  # planted_week
    assert not [t for t in fast if t.startswith(f"{panels}::test_panel_sql_returns_rows")]  # city_week
    assert not [t for t in fast if t.startswith(mqtt)]
    assert f"{evaluate}::test_silent_device_opens_once_and_resolves_when_it_reports" in fast
    assert f"{evaluate}::test_a_simulated_month_gives_exactly_the_planted_faults" not in fast
    assert f"{raw}::test_publish_all_returns_once_every_message_is_acknowledged_in_order" in fast
    assert f"{raw}::test_raw_publisher_gets_every_message_acknowledged_and_delivered" not in fast  # 70,000 messages
