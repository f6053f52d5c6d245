from __future__ import annotations

import numpy as np
import pytest

from stadtpuls.planning.outings import OutingCost, deadlines, next_outing, outing_cost
from stadtpuls.planning.rounds import great_circle

COST = OutingCost(outing_km=30.0, reload_km=10.0, capacity_l=30_000.0)
DAYS = np.arange(6, dtype=np.float64)  # rounds a day apart


def rising(start: list[float], rate: float) -> np.ndarray:
    return np.minimum(100.0, np.array(start)[:, None] + rate * DAYS[None, :])


def test_deadline_is_the_last_day_before_the_urgent_level() -> None:
    levels = rising([91.0, 85.0, 10.0], 3.0)  # 92.5 % by day 1, by day 3, never within 5 days
    assert deadlines(levels, 92.5).tolist() == [0, 2, 5]


def test_next_outing_waits_for_the_bins_worth_an_outing_of_their_own() -> None:
    levels = rising([91.0, 85.0, 85.0, 85.0], 3.0)
    litres = np.full(4, 1100.0)
    rates = np.full(4, 3.0)
    # Two days of fill given up on three bins (6 points each) cost less than an outing: take them today.
    cheap = next_outing(levels, litres, rates=rates, days=DAYS, urgent_pct=92.5, cost=COST, pickup_km=4.0)
    assert cheap == 5 and (deadlines(levels, 92.5) < cheap).all()
    # Worth more than an outing: the next outing is the day they become due.
    dear = next_outing(levels, litres, rates=rates, days=DAYS, urgent_pct=92.5, cost=COST, pickup_km=200.0)
    assert dear == 2


def test_next_outing_comes_before_a_bin_emptied_today_is_full_again() -> None:
    levels = rising([91.0, 85.0], 3.0)
    levels[0] = np.minimum(100.0, 91.0 + 40.0 * DAYS)  # a fast bin, due today: from empty, 92.5 % in 2.3 days
    rates = np.array([40.0, 3.0])
    nxt = next_outing(levels, np.full(2, 1100.0), rates=rates, days=DAYS, urgent_pct=92.5, cost=COST, pickup_km=4.0)
    assert nxt == 2  # its next round before day 3's


def test_more_bins_than_a_body_cost_a_trip_to_the_disposal_site() -> None:
    # Ten bins due today (10,010 l) and fifteen due on day 2 (12,750 l today): together more than a 20,000 l body.
    levels = rising([91.0] * 10 + [85.0] * 15, 3.0)
    litres = np.full(25, 1100.0)
    rates = np.full(25, 3.0)
    dear = OutingCost(outing_km=30.0, reload_km=500.0, capacity_l=20_000.0)  # a reload dearer than an outing
    assert next_outing(levels, litres, rates=rates, days=DAYS, urgent_pct=92.5, cost=dear, pickup_km=4.0) == 2
    cheap = OutingCost(outing_km=30.0, reload_km=10.0, capacity_l=20_000.0)
    assert next_outing(levels, litres, rates=rates, days=DAYS, urgent_pct=92.5, cost=cheap, pickup_km=4.0) == 5


def test_outing_cost_goes_via_the_bins_to_the_disposal_site_and_home() -> None:
    km = great_circle()
    depot, site = (51.34, 12.37), (51.37, 12.44)
    bins = [(51.33, 12.36), (51.35, 12.38)]
    cost = outing_cost(km, depot, site, bins, 30_000.0)
    d = km([depot, (51.34, 12.37), site])
    assert cost.outing_km == pytest.approx(float(d[0, 1] + d[1, 2] + d[2, 0]))
    assert cost.reload_km == pytest.approx(2 * float(d[1, 2])) and cost.reload_km > 0
    assert cost.capacity_l == 30_000.0
