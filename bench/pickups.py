"""Waste collection: the fixed weekly round against collection from the hub's pickup plan, over 8 simulated weeks.

The medium town's bins (the simulator's waste model: fill rates by waste type, weekday, hour and location, with
noise and bulky dumps) run twice from the same start. Once with the fixed round (every bin on its district's
weekday, busy areas twice a week). Once with the hub's plan: at 05:00 of every service day the planner
(:mod:`stadtpuls.planning`) gets each bin's fill readings as the hub stores them, fits its fill rate since the last
emptying, selects every bin that is over its threshold or predicted to cross it before the next round, and
orders them into a route from the depot; the trucks then empty exactly those bins. Counted for each: pickups
driven, bin-days with a bin at or over 100 %, and route kilometres. Deterministic per seed; several seeds.

    python -m bench.pickups [--weeks 8] [--seeds 1 2 3] [--city medium]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from stadtpuls.planning import (
    BinState,
    day_start,
    distance_matrix,
    fit_fill_rate,
    next_service_day,
    plan,
    solve_route,
    tour_length,
)
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
TARGET_SAVING = 0.30


@dataclass
class Outcome:
    pickups: int
    overflow_bin_days: int
    km: float


class HubPlanner:
    """The collection schedule the hub would give: the planner over the readings seen so far."""

    def __init__(self, model: WasteModel) -> None:
        self.model = model
        self.times: dict[str, list[float]] = defaultdict(list)
        self.fills: dict[str, list[float]] = defaultdict(list)
        self.km = 0.0

    def observe(self, site_id: str, t_us: int, fill_pct: float) -> None:
        self.times[site_id].append(t_us / 1e6)
        self.fills[site_id].append(fill_pct)

    def __call__(self, day: date, now_us: int) -> list[str]:
        now = from_us(now_us)
        bins = []
        for site in self.model.sites:
            t, f = self.times[site.site_id], self.fills[site.site_id]
            fit = fit_fill_rate(np.array(t), np.array(f), now=now.timestamp()) if t else None
            bins.append(
                BinState(
                    site.site_id,
                    site.lat or 0.0,
                    site.lon or 0.0,
                    fit.level_now if fit else 0.0,
                    fit.rate_per_day if fit else 0.0,
                    now,
                    site.threshold_pct or 80.0,
                )
            )
        start = day_start(day, TZ, ROUND_START.hour)
        result = plan(
            bins,
            depot=DEPOT,
            start=start,
            next_start=day_start(next_service_day(day, SERVICE_DAYS), TZ, ROUND_START.hour),
            solver="heuristic",
        )
        self.km += result.distance_km
        return result.site_ids


def _fixed_km(model: WasteModel, weeks: int, start: datetime) -> float:
    """Route kilometres of the fixed round (the same route solver, per service day)."""
    pos = {s.site_id: (s.lat or 0.0, s.lon or 0.0) for s in model.sites}
    km = 0.0
    for k in range(weeks * 7):
        day = (start + timedelta(days=k)).date()
        if day.weekday() not in SERVICE_DAYS:
            continue
        points = [pos[s] for s in model.schedule(day, 0)]
        if points:
            order, _ = solve_route(DEPOT, points, solver="heuristic")
            nodes = [DEPOT] + [points[i] for i in order]
            km += tour_length(distance_matrix(nodes), np.arange(len(nodes)))
    return km


def run(seed: int, weeks: int, city_size: str, planned: bool) -> Outcome:
    city = build_city(city_size, seed)
    start = parse_start(START)
    model = WasteModel(city, seed, start, TZ, Weather(seed, TZ), None, SERVICE_DAYS)
    planner = HubPlanner(model) if planned else None
    if planner is not None:
        model.schedule = planner
    site_of = {d.index: d.site_id for d in city.devices}
    for w0 in range(start, start + weeks * 7 * DAY_US, HOUR_US):
        for batch in model.step(w0, w0 + HOUR_US):
            if planner is not None:
                fills = batch.quantities["fill_pct"].tolist()
                for dev, t, f in zip(batch.dev.tolist(), batch.t_us.tolist(), fills, strict=True):
                    planner.observe(site_of[dev], t, f)
    km = planner.km if planner is not None else _fixed_km(model, weeks, from_us(start))
    return Outcome(len(model.pickups), len(model.overflow_days), km)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--city", default="medium", choices=("small", "medium", "large"))
    args = ap.parse_args()
    n_bins = len(build_city(args.city, args.seeds[0]).sites_of("bin"))
    print(f"{args.city} town, {n_bins} bins, {args.weeks} weeks from {START}, service days Mon-Fri")
    print(
        f"{'seed':>4}  {'fixed pickups':>13} {'overflow':>8} {'km':>7}   {'plan pickups':>12} {'overflow':>8} "
        f"{'km':>7}   {'saved':>6}"
    )
    savings, ok = [], True
    for seed in args.seeds:
        fixed = run(seed, args.weeks, args.city, planned=False)
        hub = run(seed, args.weeks, args.city, planned=True)
        saved = 1 - hub.pickups / fixed.pickups
        savings.append(saved)
        ok &= saved >= TARGET_SAVING and hub.overflow_bin_days <= fixed.overflow_bin_days
        print(
            f"{seed:>4}  {fixed.pickups:>13} {fixed.overflow_bin_days:>8} {fixed.km:>7.0f}   {hub.pickups:>12} "
            f"{hub.overflow_bin_days:>8} {hub.km:>7.0f}   {saved:>6.1%}"
        )
    print(f"median: {statistics.median(savings):.1%} fewer pickups with the hub's plan than the fixed weekly round")
    report = Report("pickups")
    report.figure("median saving", 100 * statistics.median(savings), "% fewer pickups")
    report.target(f">= {TARGET_SAVING:.0%} fewer pickups and no more overflow bin-days", ok)
    report.write()


if __name__ == "__main__":
    main()
