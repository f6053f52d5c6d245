"""Simulated time: parsing of --start/--duration, RFC 3339 text, local calendar positions."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pytest

from stadtpuls.simulators.timebase import (
    DAY_US,
    HOUR_US,
    TimeParseError,
    iso_array,
    iso_us,
    local_week_hours,
    parse_duration,
    parse_start,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("15m", 900), ("6h", 21600), ("7d", 604800), ("2w", 1209600), ("1.5h", 5400)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds * 1_000_000


@pytest.mark.parametrize("text", ["", "-1h", "0", "soon", "5y"])
def test_bad_durations_are_rejected(text):
    with pytest.raises(TimeParseError):
        parse_duration(text)


def test_start_times_and_their_text():
    us = parse_start("2025-03-03")
    assert iso_us(us) == "2025-03-03T00:00:00.000000Z"
    assert parse_start("2025-03-03T01:00:00+01:00") == us
    assert iso_array(np.array([us, us + 1]), extra_ns=np.array([7, 999])) == [
        "2025-03-03T00:00:00.000000007Z",
        "2025-03-03T00:00:00.000001999Z",
    ]
    assert iso_us(us + 1, z=False).endswith(".000001+00:00")
    with pytest.raises(TimeParseError):
        parse_start("yesterday")


def test_local_week_hours_start_on_monday_and_follow_daylight_saving():
    tz = ZoneInfo("Europe/Berlin")
    monday = parse_start("2025-03-02T23:00:00Z")  # Monday 00:00 in Berlin (CET)
    assert local_week_hours(np.array([monday]), tz)[0] == 0.0
    summer = parse_start("2025-03-30T22:00:00Z")  # Monday 00:00 CEST, after the switch
    assert local_week_hours(np.array([summer]), tz)[0] == 0.0
    across = local_week_hours(np.arange(summer - DAY_US, summer, HOUR_US), tz)
    hours = set(np.floor(across).tolist())
    assert across[0] == 143.0 and across[1] == 144.0  # Saturday 23:00, Sunday 00:00
    assert 146.0 not in hours and 147.0 in hours and len(hours) == 24  # 02:00 does not exist that Sunday
