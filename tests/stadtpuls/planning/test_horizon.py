from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from stadtpuls.planning.horizon import plan_day
from stadtpuls.planning.pickups import BinState
from stadtpuls.planning.rounds import Job, route_fleet
from stadtpuls.planning.trucks import DisposalSite, Fleet, FleetConfigError, Fraction, fleet_from_mapping

TZ = "Europe/Berlin"
DEPOT = (51.34, 12.37)
MONDAY = date(2025, 3, 3)
NOW = datetime(2025, 3, 3, 5, 0, tzinfo=ZoneInfo(TZ))
DAYS = (0, 1, 2, 3, 4)


def town(n: int, seed: int) -> list[BinState]:
    rng = np.random.default_rng(seed)
    kinds = ("residual", "paper", "packaging")
    return [
        BinState(
            f"bin-{k:04d}",
            DEPOT[0] + float(rng.uniform(-0.04, 0.04)),
            DEPOT[1] + float(rng.uniform(-0.06, 0.06)),
            float(rng.uniform(0, 95)),
            float(rng.uniform(2, 15)),
            NOW,
            80.0,
            kinds[k % 3],
            1100.0,
        )
        for k in range(n)
    ]


def small_fleet(capacity_m3: float = 4.0, shift_hours: float = 8.0, trucks: int = 2) -> Fleet:
    site = (DisposalSite("transfer", 51.37, 12.44),)
    fractions = {
        name: Fraction(name, tuple(f"{name}-{k}" for k in range(trucks)), capacity_m3, 2.0, site)
        for name in ("residual", "paper", "packaging")
    }
    return Fleet(DEPOT, fractions, shift_hours=shift_hours)


def test_capacity_and_shift_are_never_exceeded() -> None:
    fleet = small_fleet(capacity_m3=3.0, shift_hours=3.0)
    result = plan_day(town(150, 1), fleet, day=MONDAY, service_days=DAYS, tz=TZ)
    assert result.fleet.routes
    for r in result.fleet.routes:
        cap = fleet.fractions[r.fraction].capacity_bin_l
        assert max(v.load_l for v in r.visits) <= cap + 1e-6
        assert r.visits[0].kind == r.visits[-1].kind == "depot"
        assert r.hours <= fleet.shift_hours + 1e-9
        assert r.visits[-2].kind == "disposal"  # comes home empty
        # every truck unloads before its body would overflow: loads only grow between disposal visits
        for a, b in zip(r.visits, r.visits[1:], strict=False):
            if b.kind == "bin":
                assert b.load_l > a.load_l
    assert any(sum(v.kind == "disposal" for v in r.visits) > 1 for r in result.fleet.routes)
    served = {v.name for r in result.fleet.routes for v in r.bins}
    assert served.isdisjoint({j.site_id for j in result.fleet.unplanned})


def test_every_bin_that_would_overflow_before_the_next_service_day_is_planned() -> None:
    bins = town(200, 2)
    result = plan_day(bins, small_fleet(capacity_m3=20.0), day=MONDAY, service_days=DAYS, tz=TZ)
    assert not result.fleet.unplanned
    tuesday = datetime(2025, 3, 4, 7, 0, tzinfo=ZoneInfo(TZ))
    overflowing = {b.site_id for b in bins if b.level_at(tuesday) >= 100.0}
    assert overflowing and overflowing <= set(result.site_ids)
    going = {result.choices[s].bin.waste_type for s in result.site_ids}
    due = {b.site_id for b in bins if b.level_at(tuesday) >= b.threshold_pct and b.waste_type in going}
    assert due <= set(result.site_ids)  # a fraction that goes out takes all its due bins
    notes = {result.choices[s].note for s in due}
    assert "over threshold" in notes and any(n.startswith("predicted") for n in notes)
    waiting = [b for b in bins if b.site_id not in result.site_ids]
    assert waiting and all(b.level_at(tuesday) < b.threshold_pct for b in waiting)


def test_a_fraction_without_urgent_bins_stays_home() -> None:
    paper = [
        BinState("p-over", 51.35, 12.38, 82.0, 2.0, NOW, 80.0, "paper"),  # over threshold, far from overflowing
        BinState("p-soon", 51.33, 12.36, 78.0, 3.0, NOW, 80.0, "paper"),  # due Tuesday
    ]
    residual = [BinState("r-urgent", 51.34, 12.39, 88.0, 9.0, NOW, 80.0, "residual")]
    result = plan_day(paper + residual, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ)
    assert result.site_ids == ["r-urgent"] and [r.fraction for r in result.fleet.routes] == ["residual"]
    rising = [BinState("p-over", 51.35, 12.38, 82.0, 12.0, NOW, 80.0, "paper"), paper[1]]
    result = plan_day(rising + residual, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ)
    assert set(result.site_ids) == {"p-over", "p-soon", "r-urgent"}


def test_pins_and_skips_are_honoured() -> None:
    bins = town(120, 3)
    base = plan_day(bins, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ)
    left_out = next(b.site_id for b in bins if b.site_id not in base.site_ids)
    taken = next(s for s in base.site_ids if base.choices[s].why != "on_the_way")  # one the rules want
    fixed = plan_day(bins, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, pins={left_out}, skips={taken})
    assert left_out in fixed.site_ids and fixed.choices[left_out].why == "pinned"
    assert taken not in fixed.site_ids and taken in fixed.skipped


def test_plans_are_deterministic() -> None:
    fleet = small_fleet(capacity_m3=2.0, shift_hours=3.0)  # two trucks out for two of the fractions
    a = plan_day(town(100, 4), fleet, day=MONDAY, service_days=DAYS, tz=TZ)
    b = plan_day(town(100, 4), fleet, day=MONDAY, service_days=DAYS, tz=TZ)
    assert len(a.fleet.routes) > len(fleet.fractions)
    assert [(r.truck, [v.name for v in r.visits]) for r in a.fleet.routes] == [
        (r.truck, [v.name for v in r.visits]) for r in b.fleet.routes
    ]
    assert a.fleet.km == b.fleet.km > 0


def test_districts_split_the_town_in_equal_sectors() -> None:
    result = plan_day(town(100, 5), small_fleet(), day=MONDAY, service_days=DAYS, tz=TZ, districts=True)
    counts = np.bincount(list(result.district.values()), minlength=5)
    assert counts.tolist() == [20] * 5
    in_district = [c for c in result.choices.values() if c.why == "district"]
    assert in_district and all(result.district[c.bin.site_id] == 0 for c in in_district)


def test_fleet_short_of_shifts_drops_optional_bins_and_reports_the_rest() -> None:
    fleet = small_fleet(capacity_m3=20.0, shift_hours=0.75, trucks=1)
    result = plan_day(town(300, 6), fleet, day=MONDAY, service_days=DAYS, tz=TZ)
    assert result.fleet.unplanned
    assert all(c.why not in ("on_the_way", "district") for c in result.choices.values())


def test_route_fleet_times_each_stop() -> None:
    start = NOW + timedelta(hours=2)
    jobs = [Job(f"b{k}", 51.34 + k * 0.001, 12.37, "paper", 500.0) for k in range(1, 6)]
    plan = route_fleet(jobs, small_fleet(), start)
    (r,) = plan.routes
    assert [v.name for v in r.bins] == ["b1", "b2", "b3", "b4", "b5"]
    for a, b in zip(r.visits, r.visits[1:], strict=False):
        assert b.arrival >= a.departure
    assert r.visits[0].departure == start
    assert plan.crew_hours == pytest.approx(r.hours * 2)


def test_fleet_file_errors_name_the_key() -> None:
    ok = fleet_from_mapping(
        {"fractions": {"paper": {"trucks": ["P1", "P2"], "disposal_sites": [{"lat": 51.3, "lon": 12.3}]}}},
        depot=DEPOT,
    )
    assert ok.fractions["paper"].trucks == ("P1", "P2") and ok.depot == DEPOT
    with pytest.raises(FleetConfigError) as err:
        fleet_from_mapping({"fractions": {"paper": {"capacity_m3": -1}}}, depot=DEPOT)
    assert err.value.path == "fractions.paper.capacity_m3"
    with pytest.raises(FleetConfigError):
        fleet_from_mapping({"fractions": {"paper": {"trucks": 0}}}, depot=DEPOT)


def test_reasons_name_the_day_of_overflow_or_of_the_threshold() -> None:
    bins = [
        BinState("fast", 51.35, 12.38, 75.0, 30.0, NOW, 80.0, "residual"),  # 100 % Tuesday 01:00, before the round
        BinState("slow", 51.34, 12.37, 75.0, 20.0, NOW, 80.0, "residual"),  # 80 % Monday 11:00, 100 % Tuesday 11:00
        BinState("full", 51.33, 12.36, 85.0, 1.0, NOW, 80.0, "residual"),
    ]
    result = plan_day(bins, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ)
    notes = {s: c.note for s, c in result.choices.items()}
    assert notes == {
        "fast": "predicted to overflow Tuesday",
        "slow": "predicted over threshold Monday",
        "full": "over threshold",
    }


def test_an_extra_round_on_a_sunday_takes_the_due_bins() -> None:
    bins = town(150, 7)
    result = plan_day(bins, small_fleet(20.0), day=date(2025, 3, 2), service_days=DAYS, tz=TZ, districts=True)
    assert result.start.weekday() == 6 and result.next_start.weekday() == 0
    over = {b.site_id for b in bins if b.level_at(result.start) >= 92.5}  # near overflowing
    assert over and over <= set(result.site_ids)
    assert not any(c.why == "district" for c in result.choices.values())


def test_a_silent_bin_past_its_prediction_no_longer_sends_its_trucks_out() -> None:
    # Last heard 5 days ago at 70 %, 6 points a day: its prediction passed 92.5 % on Wednesday, when the plan took it.
    silent = BinState("p-silent", 51.35, 12.38, 70.0, 6.0, NOW - timedelta(days=5), 80.0, "paper")
    quiet = BinState("p-quiet", 51.33, 12.36, 40.0, 3.0, NOW, 80.0, "paper")
    result = plan_day([silent, quiet], small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, now=NOW)
    assert result.site_ids == [] and result.fleet.routes == []
    # Without the time the states were read (states given at the plan's time), no bin counts as silent.
    result = plan_day([silent, quiet], small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ)
    assert result.site_ids == ["p-silent"]
    # The same level and rate heard this morning: 100 % now, the truck goes.
    heard = BinState("p-silent", 51.35, 12.38, 100.0, 6.0, NOW, 80.0, "paper")
    result = plan_day([heard, quiet], small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, now=NOW)
    assert result.site_ids == ["p-silent"]


def test_a_silent_bin_counts_as_emptied_each_time_its_prediction_reached_the_urgent_level() -> None:
    # Last heard 6 days before the round at 72.5 %, 10 points a day: 92.5 % two days later, then every 9.25 days
    # from empty; at the round it is 4 days into its second fill (40 %).
    start = datetime(2025, 3, 3, 7, 0, tzinfo=ZoneInfo(TZ))
    silent = BinState("r-silent", 51.35, 12.38, 72.5, 10.0, start - timedelta(days=6), 80.0, "residual")
    urgent = BinState("r-urgent", 51.34, 12.39, 90.0, 9.0, NOW, 80.0, "residual")
    result = plan_day([silent, urgent], small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, now=NOW)
    assert result.site_ids == ["r-urgent"]  # the silent bin is not due
    # Silent for less than a day: its prediction stands (100 % by the round, planned).
    recent = BinState("r-silent", 51.35, 12.38, 90.0, 10.0, start - timedelta(hours=10), 80.0, "residual")
    result = plan_day([recent, urgent], small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, now=NOW)
    assert set(result.site_ids) == {"r-silent", "r-urgent"}
    # A silent bin that first reaches the urgent level before the next round is planned like any other.
    crossing = BinState("r-silent", 51.35, 12.38, 75.0, 10.0, start - timedelta(days=1), 80.0, "residual")
    result = plan_day([crossing], small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, now=NOW)
    assert result.site_ids == ["r-silent"]


def test_look_ahead_takes_the_bins_due_before_the_fractions_next_outing() -> None:
    urgent = BinState("p-urgent", 51.34, 12.39, 91.0, 3.0, NOW, 80.0, "paper")
    # 3 points a day: 92.5 % by next Monday's round (soon), or in more than two weeks (later)
    soon = [BinState(f"p-soon-{k}", 51.36 + k * 0.002, 12.33, 71.0, 3.0, NOW, 80.0, "paper") for k in range(4)]
    later = BinState("p-later", 51.33, 12.37, 50.0, 3.0, NOW, 80.0, "paper")
    bins = [urgent, *soon, later]
    plain = plan_day(bins, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, solver="heuristic")
    ahead = plan_day(bins, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, solver="heuristic",
                     look_ahead=True)  # fmt: skip
    assert set(plain.site_ids) == {"p-urgent"}
    assert set(ahead.site_ids) == {"p-urgent", *(b.site_id for b in soon)}
    assert all(ahead.choices[b.site_id].why == "before_next_outing" for b in soon)
    # Fill given up worth more than the outing: the soon bins wait for their own outing.
    costly = plan_day(bins, small_fleet(20.0), day=MONDAY, service_days=DAYS, tz=TZ, solver="heuristic",
                      look_ahead=True, pickup_km=1_000.0)  # fmt: skip
    assert set(costly.site_ids) == {"p-urgent"}


def test_look_ahead_still_plans_every_bin_that_would_overflow_before_the_next_service_day() -> None:
    bins = town(200, 8)
    result = plan_day(bins, small_fleet(capacity_m3=20.0), day=MONDAY, service_days=DAYS, tz=TZ, look_ahead=True)
    assert not result.fleet.unplanned
    tuesday = datetime(2025, 3, 4, 7, 0, tzinfo=ZoneInfo(TZ))
    overflowing = {b.site_id for b in bins if b.level_at(tuesday) >= 100.0}
    assert overflowing and overflowing <= set(result.site_ids)
    assert any(c.why == "before_next_outing" for c in result.choices.values())
