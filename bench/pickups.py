"""Waste collection: the fixed weekly round, the daily plan and the week plan, over 8 simulated weeks.

The town's bins (the simulator's waste model: fill rates by waste type, weekday, hour and location, with noise and
bulky dumps) run three times from the same start. Once with the fixed round (every bin on its district's weekday,
busy areas twice a week). Once with the daily plan (every bin over its threshold or predicted to cross it before the
next round). Once with the week plan (:func:`stadtpuls.planning.plan_day`: a fraction's trucks go out only when one
of its bins nears overflowing, bins on the way are taken along where the routing solver finds them worth the
detour). The plans see each bin's fill readings as the hub stores them at 05:00 of every service day (the week plan
gets each bin's fitted state at its last reading and the time it is made, so it sees which sensors are silent).
Every strategy's bins of the day go through the fleet router (:func:`stadtpuls.planning.route_fleet`, the fleet of
``deploy/fleet.example.yaml``, as many trucks again per 300 bins): the fixed round and the daily plan with the tour
heuristic (nearest neighbour + 2-opt, cut into trucks and trips), the baseline; the week plan with PyVRP, its
default; ``--fixed-solver pyvrp`` routes the fixed round with PyVRP too. The simulated trucks empty exactly the
routed bins. Counted for each: pickups, bin-days with a bin at or over 100 %, km (depot to depot, unloading trips
included) and crew hours. Then one day's plan of the large town (about 2,000 bins) with the 6 trucks is timed.
Deterministic per seed; several seeds.

    python -m bench.pickups [--weeks 8] [--seeds 1 2 3] [--city medium] [--fixed-solver heuristic|pyvrp]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import yaml

from stadtpuls.planning import BinState, day_start, fit_fill_rate, next_service_day, select_bins
from stadtpuls.planning.horizon import plan_day
from stadtpuls.planning.rounds import FleetSolver, Job, route_fleet
from stadtpuls.planning.trucks import Fleet, fleet_from_mapping
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.collection import ROUND_START
from stadtpuls.simulators.timebase import DAY_US, HOUR_US, from_us, parse_start
from stadtpuls.simulators.waste import WasteModel
from stadtpuls.simulators.weather import Weather

from ._report import Report

TZ = ZoneInfo("Europe/Berlin")
SERVICE_DAYS = (0, 1, 2, 3, 4)
DEPOT = (51.3397, 12.3731)
START = "2025-03-03"  # a Monday
TARGET_PICKUPS = 0.30
TARGET_KM = 0.20
TARGET_PLAN_S = 30.0


# The fleet of deploy/fleet.example.yaml: 6 trucks, disposal sites at the town's edge, shifts from 06:00.
FLEET = fleet_from_mapping(
    yaml.safe_load((Path(__file__).parents[1] / "deploy" / "fleet.example.yaml").read_text(encoding="utf-8")),
    depot=DEPOT,
)
STRATEGIES = ("fixed", "daily", "week")


@dataclass
class Outcome:
    pickups: int
    overflow_bin_days: int
    km: float
    crew_hours: float
    unplanned: int


class Observer:
    """The hub's view of the bins: the readings seen so far, fitted into planner states on a service day."""

    def __init__(self, model: WasteModel) -> None:
        self.model = model
        self.times: dict[str, list[float]] = defaultdict(list)
        self.fills: dict[str, list[float]] = defaultdict(list)

    def observe(self, site_id: str, t_us: int, fill_pct: float) -> None:
        self.times[site_id].append(t_us / 1e6)
        self.fills[site_id].append(fill_pct)

    def states(self, now_us: int) -> list[BinState]:
        """Each bin's fitted level at its last reading (the planner predicts on from there, and sees how long the
        sensor has been silent)."""
        now = from_us(now_us)
        out = []
        for site in self.model.sites:
            t, f = self.times[site.site_id], self.fills[site.site_id]
            fit = fit_fill_rate(np.array(t), np.array(f)) if t else None
            out.append(
                BinState(
                    site.site_id,
                    site.lat or 0.0,
                    site.lon or 0.0,
                    fit.level_now if fit else 0.0,
                    fit.rate_per_day if fit else 0.0,
                    datetime.fromtimestamp(t[-1], UTC) if t else now,
                    site.threshold_pct or 80.0,
                    site.waste_type or "residual",
                    float(site.volume_l or 1100),
                )
            )
        return out


def scaled_fleet(n_bins: int) -> Fleet:
    """The bench fleet with as many trucks per fraction again for every started 300 bins."""
    k = max(1, math.ceil(n_bins / 300))
    fractions = {
        name: replace(f, trucks=tuple(f"{t}.{j + 1}" if k > 1 else t for t in f.trucks for j in range(k)))
        for name, f in FLEET.fractions.items()
    }
    return replace(FLEET, fractions=fractions)


class Collection:
    """One strategy's schedule for the simulator, driving the same fleet router for km and crew hours."""

    def __init__(self, model: WasteModel, strategy: str, baseline_solver: FleetSolver = "heuristic") -> None:
        self.seen = Observer(model)
        self.strategy = strategy
        self.baseline_solver = baseline_solver
        self.fleet = scaled_fleet(len(model.sites))
        self.fixed = model.schedule
        self.km = 0.0
        self.crew_hours = 0.0
        self.unplanned = 0

    def __call__(self, day: date, now_us: int) -> list[str]:
        bins = self.seen.states(now_us)
        start = day_start(day, TZ, ROUND_START.hour)
        if self.strategy == "week":
            result = plan_day(bins, self.fleet, day=day, service_days=SERVICE_DAYS, tz=TZ.key, now=from_us(now_us))
            fleet = result.fleet
        else:
            if self.strategy == "fixed":
                wanted = set(self.fixed(day, now_us))
                chosen = [b for b in bins if b.site_id in wanted]
            else:
                nxt = day_start(next_service_day(day, SERVICE_DAYS), TZ, ROUND_START.hour)
                chosen = [s.bin for s in select_bins(bins, start, nxt)]
            jobs = [Job(b.site_id, b.lat, b.lon, b.waste_type, b.volume_l * b.level_at(start) / 100) for b in chosen]
            solver: FleetSolver = self.baseline_solver if self.strategy == "fixed" else "heuristic"
            fleet = route_fleet(jobs, self.fleet, start, solver=solver)
        self.km += fleet.km
        self.crew_hours += fleet.crew_hours
        self.unplanned += len(fleet.unplanned)
        return [v.name for r in fleet.routes for v in r.bins]


def run(seed: int, weeks: int, city_size: str, strategy: str, fixed_solver: FleetSolver = "heuristic") -> Outcome:
    city = build_city(city_size, seed)
    start = parse_start(START)
    model = WasteModel(city, seed, start, TZ, Weather(seed, TZ), None, SERVICE_DAYS)
    collection = Collection(model, strategy, fixed_solver)
    model.schedule = collection
    site_of = {d.index: d.site_id for d in city.devices}
    for w0 in range(start, start + weeks * 7 * DAY_US, HOUR_US):
        for batch in model.step(w0, w0 + HOUR_US):
            fills = batch.quantities["fill_pct"].tolist()
            for dev, t, f in zip(batch.dev.tolist(), batch.t_us.tolist(), fills, strict=True):
                collection.seen.observe(site_of[dev], t, f)
    return Outcome(
        len(model.pickups), len(model.overflow_days), collection.km, collection.crew_hours, collection.unplanned
    )


def time_large_day(seed: int) -> tuple[int, int, int, float]:
    """Seconds to plan one service day of the large town (about 2,000 bins) with the bench fleet (6 trucks): the
    simulator's start levels after a week without collection, so that many bins are due."""
    city = build_city("large", seed)
    start = parse_start(START)
    model = WasteModel(city, seed, start, TZ, Weather(seed, TZ), None, SERVICE_DAYS)
    now = from_us(start)
    bins = [
        BinState(
            s.site_id,
            s.lat or 0.0,
            s.lon or 0.0,
            min(100.0, float(level + 7 * rate)),
            float(rate),
            now,
            s.threshold_pct or 80.0,
            s.waste_type or "residual",
            float(s.volume_l or 1100),
        )
        for s, level, rate in zip(model.sites, model.level, model.rate, strict=True)
    ]
    t0 = time.perf_counter()
    result = plan_day(bins, FLEET, day=from_us(start).astimezone(TZ).date(), service_days=SERVICE_DAYS, tz=TZ.key)
    return len(bins), len(result.site_ids), len(result.fleet.unplanned), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--city", default="medium", choices=("small", "medium", "large"))
    ap.add_argument("--fixed-solver", default="heuristic", choices=("heuristic", "pyvrp"))
    args = ap.parse_args()
    n_bins = len(build_city(args.city, args.seeds[0]).sites_of("bin"))
    print(
        f"{args.city} town, {n_bins} bins, {args.weeks} weeks from {START}, service days Mon-Fri; fixed round routed "
        f"by {args.fixed_solver}"
    )
    print(f"{'seed':>4} {'strategy':>8} {'pickups':>8} {'overflow':>8} {'km':>7} {'crew h':>7} {'unplanned':>9}")
    ok = True
    saved_pickups, saved_km, saved_hours = [], [], []
    for seed in args.seeds:
        out = {s: run(seed, args.weeks, args.city, s, args.fixed_solver) for s in STRATEGIES}
        for name, o in out.items():
            print(
                f"{seed:>4} {name:>8} {o.pickups:>8} {o.overflow_bin_days:>8} {o.km:>7.0f} {o.crew_hours:>7.0f} "
                f"{o.unplanned:>9}"
            )
        fixed, week = out["fixed"], out["week"]
        saved_pickups.append(1 - week.pickups / fixed.pickups)
        saved_km.append(1 - week.km / fixed.km)
        saved_hours.append(1 - week.crew_hours / fixed.crew_hours)
        ok &= (
            saved_pickups[-1] >= TARGET_PICKUPS
            and saved_km[-1] >= TARGET_KM
            and week.crew_hours < fixed.crew_hours
            and week.overflow_bin_days <= fixed.overflow_bin_days
        )
        print(
            f"     week plan vs fixed: {saved_pickups[-1]:.1%} fewer pickups, {saved_km[-1]:.1%} fewer km, "
            f"{saved_hours[-1]:.1%} fewer crew hours"
        )
    n_large, n_planned, n_left, seconds = time_large_day(args.seeds[0])
    trucks = sum(len(f.trucks) for f in FLEET.fractions.values())
    print(
        f"one day's plan, large town: {n_large} bins, {trucks} trucks: {n_planned} bins routed, {n_left} beyond the "
        f"shifts, {seconds:.1f} s"
    )
    ok &= seconds <= TARGET_PLAN_S
    report = Report("pickups")
    report.figure("day plan, large town", seconds, f"s for {n_large} bins and {trucks} trucks")
    report.figure("median pickups saved", 100 * statistics.median(saved_pickups), "% vs the fixed round")
    report.figure("median km saved", 100 * statistics.median(saved_km), "% vs the fixed round")
    report.figure("median crew hours saved", 100 * statistics.median(saved_hours), "% vs the fixed round")
    report.target(
        f">= {TARGET_PICKUPS:.0%} fewer pickups, >= {TARGET_KM:.0%} fewer km, fewer crew hours, "
        f"no more overflow bin-days; a large town's day planned in <= {TARGET_PLAN_S:.0f} s",
        ok,
    )
    report.write()


if __name__ == "__main__":
    main()
