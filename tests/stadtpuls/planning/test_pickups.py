from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from stadtpuls.planning.pickups import (
    BinState,
    day_start,
    fit_fill_rate,
    last_emptying,
    next_service_day,
    plan,
    route,
    select_bins,
    theil_sen,
)
from stadtpuls.planning.routing import distance_matrix, tour_length

T0 = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # a Monday


def hourly(n: int, start: datetime = T0) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(n)]


def test_fit_recovers_a_linear_rate_despite_outliers() -> None:
    times = hourly(72)
    fills = 10 + 12.0 * np.arange(72) / 24  # 12 points a day
    rng = np.random.default_rng(1)
    fills = fills + rng.normal(0, 0.5, 72)
    fills[[10, 30, 50]] = 100.0  # something in front of the sensor
    fit = fit_fill_rate(times, fills)
    assert fit.rate_per_day == pytest.approx(12.0, abs=0.4)
    assert fit.level_now == pytest.approx(10 + 12 * 71 / 24, abs=1.0)


def test_fit_uses_only_readings_since_the_last_emptying() -> None:
    times = hourly(96)
    fills = np.concatenate([60 + 30 * np.arange(48) / 24, 5 + 6 * np.arange(48) / 24])  # emptied at hour 48
    assert last_emptying(times, fills) == 48
    fit = fit_fill_rate(times, fills)
    assert fit.rate_per_day == pytest.approx(6.0, abs=0.1)
    assert fit.level_now == pytest.approx(5 + 6 * 47 / 24, abs=0.3)


def test_single_low_echo_is_not_an_emptying() -> None:
    fills = 40 + 10 * np.arange(48) / 24
    fills[20] = 2.0
    assert last_emptying(hourly(48), fills) == 0
    assert fit_fill_rate(hourly(48), fills).rate_per_day == pytest.approx(10.0, abs=0.2)


def test_low_last_reading_waits_for_confirmation() -> None:
    fills = list(60 + 10 * np.arange(48) / 24) + [23.0]  # a glitch, or an emptying an hour ago
    assert last_emptying(hourly(49), fills) == 0
    assert fit_fill_rate(hourly(49), fills).level_now == pytest.approx(60 + 10 * 48 / 24, abs=0.5)
    assert last_emptying(hourly(50), [*fills, 23.5]) == 48  # the next reading confirms the pickup
    assert last_emptying(hourly(50), [*fills, 80.0]) == 0  # or shows a glitch


def test_fresh_cycle_borrows_the_previous_cycles_rate() -> None:
    times = hourly(50)
    fills = np.concatenate([20 + 24 * np.arange(48) / 24, [3.0, 3.5]])  # emptied 2 readings ago, confirmed
    fit = fit_fill_rate(times, fills, now=times[-1] + timedelta(days=1))
    assert fit.rate_per_day == pytest.approx(24.0, abs=0.5)
    assert fit.level_now == pytest.approx(3.5 + 24.0, abs=0.6)


def test_falling_fit_means_no_rise_and_empty_input_is_zero() -> None:
    fills = 50 - 2 * np.arange(24) / 24
    assert fit_fill_rate(hourly(24), fills).rate_per_day == 0.0
    assert fit_fill_rate([], []) == (0.0, 0.0)


def test_fit_accepts_datetime64_and_epoch_seconds() -> None:
    times = hourly(30)
    fills = 10 + 8 * np.arange(30) / 24
    as64 = np.array([t.replace(tzinfo=None) for t in times], dtype="datetime64[s]")
    epoch = np.array([t.timestamp() for t in times])
    a, b, c = fit_fill_rate(times, fills), fit_fill_rate(as64, fills), fit_fill_rate(epoch, fills)
    assert a == pytest.approx(b) and a == pytest.approx(c)


def test_theil_sen_is_exact_on_a_line() -> None:
    x = np.arange(10.0)
    assert theil_sen(x, 3 * x + 2) == pytest.approx((3.0, 2.0))


def test_bin_state_prediction_and_crossing() -> None:
    b = BinState("b1", 51.0, 12.0, level_pct=50, rate_per_day=10, at=T0, threshold_pct=80)
    assert b.level_at(T0 + timedelta(days=2)) == pytest.approx(70)
    assert b.level_at(T0 + timedelta(days=10)) == 100.0
    assert b.level_at(T0 - timedelta(days=1)) == 50  # no extrapolation into the past
    assert b.crossing_at() == T0 + timedelta(days=3)
    assert BinState("b2", 51, 12, 10, 0, T0).crossing_at() is None
    assert BinState("b4", 51, 12, 10, 1e-12, T0).crossing_at() is None  # beyond any date, not an OverflowError
    assert BinState("b3", 51, 12, 90, 0, T0).crossing_at() == T0


def test_next_service_day_skips_to_the_next_weekday_in_the_schedule() -> None:
    assert next_service_day(date(2025, 3, 7), [0, 2, 4]) == date(2025, 3, 10)  # Friday -> Monday
    assert next_service_day(date(2025, 3, 3), [0, 2, 4]) == date(2025, 3, 5)
    with pytest.raises(ValueError):
        next_service_day(date(2025, 3, 3), [])


def test_day_start_is_local_time() -> None:
    start = day_start(date(2025, 7, 1), "Europe/Berlin", 6.5)
    assert start.astimezone(UTC) == datetime(2025, 7, 1, 4, 30, tzinfo=UTC)


def test_select_bins_over_threshold_and_predicted_only() -> None:
    start, nxt = T0 + timedelta(days=1), T0 + timedelta(days=3)
    bins = [
        BinState("full", 51, 12, 85, 1, T0),
        BinState("soon", 51, 12, 50, 12, T0),  # 86 % at the next round
        BinState("slow", 51, 12, 50, 5, T0),  # 65 %
        BinState("empty", 51, 12, 2, 3, T0),
    ]
    chosen = select_bins(bins, start, nxt)
    assert [(s.bin.site_id, s.reason) for s in chosen] == [("full", "over_threshold"), ("soon", "predicted")]
    assert [s.bin.site_id for s in select_bins(bins, start, nxt, slack_pct=16)] == ["full", "soon", "slow"]


def test_route_visits_every_point_once_and_beats_input_order() -> None:
    rng = np.random.default_rng(7)
    depot = (51.34, 12.37)
    pts = [(51.30 + rng.random() * 0.1, 12.30 + rng.random() * 0.15) for _ in range(60)]
    order = route(depot, pts, solver="heuristic")
    assert sorted(order) == list(range(60))
    dist = distance_matrix([depot, *pts])
    ours = tour_length(dist, [0, *(i + 1 for i in order)])
    naive = tour_length(dist, list(range(61)))
    assert ours < 0.5 * naive


def test_route_on_a_line_is_optimal() -> None:
    depot = (51.0, 12.0)
    pts = [(51.0, 12.0 + 0.01 * k) for k in (5, 2, 9, 1, 7, 3)]
    order = route(depot, pts, return_to_depot=False, solver="heuristic")
    assert [pts[i][1] for i in order] == sorted(p[1] for p in pts)
    assert route(depot, []) == []


def test_plan_orders_selected_bins_with_expected_fill_at_arrival() -> None:
    start = day_start(date(2025, 3, 4), "Europe/Berlin", 7)
    nxt = day_start(date(2025, 3, 5), "Europe/Berlin", 7)
    bins = [
        BinState(f"b{k}", 51.30 + 0.01 * k, 12.37, level_pct=70 + k, rate_per_day=20, at=start - timedelta(hours=6))
        for k in range(8)
    ] + [BinState("low", 51.35, 12.40, 5, 1, start)]
    p = plan(bins, depot=(51.34, 12.37), start=start, next_start=nxt, speed_kmh=30, service_s=60)
    assert sorted(p.site_ids) == [f"b{k}" for k in range(8)]
    assert [s.seq for s in p.stops] == list(range(1, 9))
    arrivals = [s.arrival for s in p.stops]
    assert arrivals == sorted(arrivals) and arrivals[0] >= start and arrivals[-1] > start
    for s in p.stops:
        assert s.expected_fill_pct == pytest.approx(s.bin.level_at(s.arrival), abs=0.05)
        assert s.expected_fill_pct > 70
    assert p.distance_km == pytest.approx(sum(s.leg_km for s in p.stops) + p.return_km)
    with pytest.raises(ValueError):
        plan(bins, depot=(51.34, 12.37), start=nxt, next_start=start)


def test_prediction_counts_real_hours_across_a_dst_change() -> None:
    zone = "Europe/Berlin"
    before = day_start(date(2025, 3, 29), zone, 12)  # Saturday noon, UTC+1
    after = day_start(date(2025, 3, 30), zone, 12)  # Sunday noon, UTC+2: only 23 hours later
    b = BinState("b", 51, 12, level_pct=0, rate_per_day=24, at=before)
    assert b.level_at(after) == pytest.approx(23.0)
    assert BinState("c", 51, 12, 0, 24, before, threshold_pct=23).crossing_at() == after
