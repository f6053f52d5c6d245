from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from stadtpuls.planning import rounds, vrp
from stadtpuls.planning.horizon import plan_day
from stadtpuls.planning.pickups import BinState
from stadtpuls.planning.rounds import Job, route_fleet
from stadtpuls.planning.trucks import DisposalSite, Fleet, Fraction

TZ = "Europe/Berlin"
DEPOT = (51.34, 12.37)
START = datetime(2025, 3, 3, 7, 0, tzinfo=ZoneInfo(TZ))


def jobs(n: int, seed: int, kind: str = "residual", litres: tuple[float, float] = (300.0, 1100.0)) -> list[Job]:
    rng = np.random.default_rng(seed)
    return [
        Job(
            f"{kind}-{k:03d}",
            DEPOT[0] + float(rng.uniform(-0.04, 0.04)),
            DEPOT[1] + float(rng.uniform(-0.06, 0.06)),
            kind,
            float(rng.uniform(*litres)),
        )
        for k in range(n)
    ]


def fleet(trucks: int = 2, capacity_m3: float = 4.0, shift_hours: float = 8.0, sites: int = 1) -> Fleet:
    where = [DisposalSite("north", 51.37, 12.44), DisposalSite("south", 51.31, 12.33)][:sites]
    fractions = {
        "residual": Fraction("residual", tuple(f"R{k + 1}" for k in range(trucks)), capacity_m3, 2.0, tuple(where))
    }
    return Fleet(DEPOT, fractions, shift_hours=shift_hours)


def served(plan: rounds.FleetPlan) -> list[str]:
    return [v.name for r in plan.routes for v in r.bins]


@pytest.mark.parametrize("sites", [1, 2])
def test_solver_routes_keep_capacity_and_shift_and_end_at_a_disposal_site(sites: int) -> None:
    f = fleet(trucks=2, capacity_m3=3.0, shift_hours=4.0, sites=sites)
    plan = route_fleet(jobs(90, 1), f, START, solver="pyvrp")
    assert plan.solver == "pyvrp" and plan.routes
    cap = f.fractions["residual"].capacity_bin_l
    for r in plan.routes:
        assert r.visits[0].kind == r.visits[-1].kind == "depot" and r.visits[-2].kind == "disposal"
        assert r.hours <= f.shift_hours + 1e-9
        load = 0.0
        for v in r.visits[1:]:
            load = 0.0 if v.kind != "bin" else load + v.job.litres  # type: ignore[union-attr]
            assert v.load_l == pytest.approx(load) and load <= cap + 1e-6
    assert len(served(plan)) == len(set(served(plan)))
    assert set(served(plan)) | {j.site_id for j in plan.unplanned} == {j.site_id for j in jobs(90, 1)}
    assert plan.unplanned  # 90 bins do not fit into two 4-hour shifts


def test_solver_is_not_longer_than_the_tour_heuristic() -> None:
    f = fleet(trucks=2, capacity_m3=6.0)
    day = jobs(60, 2)
    tour = route_fleet(day, f, START, solver="heuristic")
    solved = route_fleet(day, f, START, solver="pyvrp")
    assert not tour.unplanned and not solved.unplanned
    assert sorted(served(solved)) == sorted(served(tour))
    assert solved.km < tour.km


def test_solver_plans_are_deterministic() -> None:
    f = fleet(trucks=2, capacity_m3=3.0)
    a = route_fleet(jobs(70, 3), f, START, solver="pyvrp")
    b = route_fleet(jobs(70, 3), f, START, solver="pyvrp")
    assert [(r.truck, [v.name for v in r.visits]) for r in a.routes] == [
        (r.truck, [v.name for v in r.visits]) for r in b.routes
    ]


def test_a_short_fleet_leaves_out_bins_with_a_prize_first() -> None:
    day = jobs(80, 4)
    offered = {j.site_id for j in day[::2]}
    priced = [Job(j.site_id, j.lat, j.lon, j.waste_type, j.litres, prize_km=50.0) if j.site_id in offered else j
              for j in day]  # fmt: skip
    plan = route_fleet(priced, fleet(trucks=1, capacity_m3=20.0, shift_hours=2.5), START, solver="pyvrp")
    left = {j.site_id for j in plan.unplanned}
    assert left and served(plan)
    must_left = left - offered
    assert not must_left or not offered & set(served(plan))  # a bin to be emptied waits only when no offered one went


def test_a_bin_on_the_way_is_taken_only_where_its_detour_is_worth_it() -> None:
    now = START.replace(hour=5)
    due = [BinState(f"due-{k}", 51.34 + 0.004 * k, 12.37, 85.0, 10.0, now, 80.0) for k in range(5)]
    near = BinState("near", 51.3485, 12.3695, 65.0, 8.0, now, 80.0)  # 35 m off the line of due bins
    far = BinState("far", 51.34, 12.45, 65.0, 8.0, now, 80.0)  # 5.6 km east of it
    f = fleet(trucks=1, capacity_m3=20.0)
    plan = plan_day([*due, near, far], f, day=START.date(), service_days=(0, 1, 2, 3, 4), tz=TZ)
    assert plan.district["near"] == 4 and plan.district["far"] == 0  # both would cross before their district's day
    assert set(plan.site_ids) == {*(b.site_id for b in due), "near"}
    assert plan.choices["near"].why == "on_the_way" and "far" not in plan.choices
    assert not plan.fleet.unplanned  # declined, not left over for lack of trucks


def test_without_pyvrp_the_tour_heuristic_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vrp, "available", lambda: False)
    plan = route_fleet(jobs(30, 5), fleet(), START, solver="pyvrp")
    assert plan.solver == "nearest-neighbour+2-opt" and len(served(plan)) == 30
