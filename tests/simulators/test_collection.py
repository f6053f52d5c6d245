"""Collection schedules: planning days, visiting times and the fixed weekly round."""

from __future__ import annotations

import collections
from datetime import date, datetime
from zoneinfo import ZoneInfo

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.collection import STOP_US, FixedSchedule, planning_days, visit_times
from stadtpuls.simulators.timebase import DAY_US, from_us, parse_start

TZ = ZoneInfo("Europe/Berlin")


def test_planning_happens_at_five_on_service_days_only():
    start = parse_start("2025-03-03")  # Monday
    days = planning_days(start, start + 7 * DAY_US, TZ, (0, 1, 2, 3, 4))
    assert [d for d, _ in days] == [date(2025, 3, k) for k in range(3, 8)]
    assert all(from_us(at).astimezone(TZ).hour == 5 for _, at in days)
    assert planning_days(start, start + 7 * DAY_US, TZ, (5,)) == [(date(2025, 3, 8), days[0][1] + 5 * DAY_US)]


def test_visits_start_at_six_five_minutes_apart():
    times = visit_times(date(2025, 7, 1), TZ, 3)
    assert from_us(int(times[0])).astimezone(TZ) == datetime(2025, 7, 1, 6, 0, tzinfo=TZ)
    assert list(times[1:] - times[:-1]) == [STOP_US, STOP_US]


def test_fixed_round_visits_every_bin_weekly_and_busy_ones_more_often():
    city = build_city("medium", 1)
    bins = city.sites_of("bin")
    expected = [200.0 if k % 10 == 0 else 90.0 if k % 4 == 0 else 40.0 for k in range(len(bins))]
    schedule = FixedSchedule(bins, expected, city.center)
    visits = collections.Counter()
    for k in range(7):
        for site in schedule(date(2025, 3, 3 + k), 0):
            visits[site] += 1
    assert set(visits) == {b.site_id for b in bins}
    assert all(
        visits[b.site_id] == (3 if expected[k] > 150 else 2 if expected[k] > 75 else 1) for k, b in enumerate(bins)
    )
    assert schedule(date(2025, 3, 8), 0) == [] and schedule(date(2025, 3, 9), 0) == []
