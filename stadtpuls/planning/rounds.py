"""One day's rounds for the whole fleet: which truck empties which bins in which order, when it unloads, and when
it is back. Pure, no I/O.

Per fraction, with ``solver="pyvrp"`` (the default of :func:`horizon.plan_day`): the fraction's day is one
vehicle-routing problem for all its trucks at once, capacities, unloading trips and shifts included
(:mod:`stadtpuls.planning.vrp`); its tours are walked as below to time each visit. Where PyVRP is not installed or
finds no feasible plan, and with the other solvers (route first, cluster second):

1. order all of the day's bins of the fraction into one tour from the depot (:func:`routing.solve_route`:
   nearest neighbour + 2-opt, or OR-Tools when asked for and installed);
2. walk the tour with the first truck: before a bin that would overfill the body, drive to the nearest disposal
   site and unload; before a bin whose service (plus the way to a disposal site and home) would end after the
   shift, send the truck to unload and home, and go on with the next truck;
3. bins left when every truck's shift is full are returned as ``unplanned`` (the caller drops optional bins
   first and plans again).

Distances come from ``km(points) -> matrix`` (default: great-circle times the road factor; the API can pass the
matrix of an OSRM-compatible ``/table`` service instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import numpy as np

from . import vrp
from .routing import Solver, distance_matrix, solve_route
from .trucks import Fleet, Fraction

__all__ = ["Distances", "FleetPlan", "FleetSolver", "Job", "TruckRoute", "Visit", "great_circle", "route_fleet"]

Distances = Callable[[Sequence[tuple[float, float]]], np.ndarray]
FleetSolver = Literal["auto", "heuristic", "ortools", "pyvrp"]
VRP: Final = "pyvrp"
# The tour solver behind each fleet solver; PyVRP falls back to the heuristic.
TOUR_SOLVER: dict[FleetSolver, Solver] = {
    "auto": "auto",
    "heuristic": "heuristic",
    "ortools": "ortools",
    VRP: "heuristic",
}
VisitKind = Literal["bin", "disposal", "depot"]


def great_circle(road_factor: float = 1.3) -> Distances:
    def km(points: Sequence[tuple[float, float]]) -> np.ndarray:
        return distance_matrix(points, road_factor=road_factor)

    return km


@dataclass(frozen=True)
class Job:
    """A bin to empty: where, how many bin litres it holds at the visit, and what the caller wants carried.

    ``prize_km`` None: the bin is to be emptied as far as the shifts allow. A number makes it optional for the
    vehicle-routing solver, worth a detour of that many km; a full fleet leaves optional bins out first. The tour
    heuristic serves every bin it can."""

    site_id: str
    lat: float
    lon: float
    waste_type: str
    litres: float
    payload: Any = None
    prize_km: float | None = None


@dataclass(frozen=True)
class Visit:
    kind: VisitKind
    name: str  # the bin's site_id, the disposal site's name, or "depot"
    lat: float
    lon: float
    arrival: datetime
    departure: datetime
    leg_km: float  # from the previous visit
    load_l: float  # bin litres on board after the visit
    job: Job | None = None


@dataclass(frozen=True)
class TruckRoute:
    truck: str
    fraction: str
    visits: list[Visit]  # depot ... depot

    @property
    def km(self) -> float:
        return float(sum(v.leg_km for v in self.visits))

    @property
    def hours(self) -> float:
        return (self.visits[-1].arrival - self.visits[0].departure).total_seconds() / 3600.0

    @property
    def bins(self) -> list[Visit]:
        return [v for v in self.visits if v.kind == "bin"]


@dataclass(frozen=True)
class FleetPlan:
    routes: list[TruckRoute]
    unplanned: list[Job]
    solver: str
    crew: int

    @property
    def km(self) -> float:
        return float(sum(r.km for r in self.routes))

    @property
    def crew_hours(self) -> float:
        return float(sum(r.hours for r in self.routes)) * self.crew


class _Walk:
    """A truck's day as it is built: position, clock, load and visits so far."""

    def __init__(self, truck: str, fraction: str, depot: tuple[float, float], start: datetime) -> None:
        self.truck, self.fraction = truck, fraction
        self.visits = [Visit("depot", "depot", depot[0], depot[1], start, start, 0.0, 0.0)]
        self.node = 0
        self.clock = start
        self.load = 0.0

    def go(self, node: int, kind: VisitKind, name: str, pos: tuple[float, float], km: float, speed: float,
           stay_s: float, load: float, job: Job | None = None) -> None:  # fmt: skip
        arrival = self.clock + timedelta(hours=km / speed)
        self.clock = arrival + timedelta(seconds=stay_s)
        self.load = load
        self.node = node
        self.visits.append(Visit(kind, name, pos[0], pos[1], arrival, self.clock, km, load, job))


def _fraction_routes(
    jobs: list[Job],
    fraction: Fraction,
    fleet: Fleet,
    start: datetime,
    km: Distances,
    solver: FleetSolver,
    seconds: float,
) -> tuple[list[TruckRoute], list[Job], str]:
    sites = fleet.disposal_sites(fraction)
    points = [fleet.depot, *((s.lat, s.lon) for s in sites), *((j.lat, j.lon) for j in jobs)]
    dist = km(points)
    if solver == VRP and vrp.available():
        found = _solved_routes(jobs, fraction, fleet, start, points, dist, seconds)
        if found is not None:
            return found
    return _cut_tour(jobs, fraction, fleet, start, dist, TOUR_SOLVER[solver])


def _solved_routes(
    jobs: list[Job],
    fraction: Fraction,
    fleet: Fleet,
    start: datetime,
    points: list[tuple[float, float]],
    dist: np.ndarray,
    seconds: float,
) -> tuple[list[TruckRoute], list[Job], str] | None:
    """The fraction's day from the vehicle-routing solver, each tour walked to time its visits."""
    sites = fleet.disposal_sites(fraction)
    first_job = 1 + len(sites)
    solved = vrp.solve_fraction(
        dist,
        points,
        n_sites=len(sites),
        litres=[j.litres for j in jobs],
        prizes_km=[j.prize_km for j in jobs],
        trucks=len(fraction.trucks),
        capacity_l=fraction.capacity_bin_l,
        speed_kmh=fleet.speed_kmh,
        shift_s=fleet.shift_hours * 3600.0,
        service_s=fleet.service_s,
        unload_s=fleet.unload_s,
        seconds=seconds,
    )
    if solved is None:
        return None
    tours, left = solved
    routes: list[TruckRoute] = []
    for truck, tour in zip(fraction.trucks, tours, strict=False):
        w = _Walk(truck, fraction.name, fleet.depot, start)
        for node in tour.nodes:
            leg = float(dist[w.node, node])
            if node >= first_job:
                job = jobs[node - first_job]
                w.go(node, "bin", job.site_id, (job.lat, job.lon), leg, fleet.speed_kmh, fleet.service_s,
                     w.load + job.litres, job)  # fmt: skip
            else:
                s = sites[node - 1]
                w.go(node, "disposal", s.name, (s.lat, s.lon), leg, fleet.speed_kmh, fleet.unload_s, 0.0)
        w.go(0, "depot", "depot", fleet.depot, float(dist[w.node, 0]), fleet.speed_kmh, 0.0, 0.0)
        routes.append(TruckRoute(w.truck, fraction.name, w.visits))
    return routes, [jobs[k] for k in left], VRP


def _cut_tour(
    jobs: list[Job], fraction: Fraction, fleet: Fleet, start: datetime, dist: np.ndarray, solver: Solver
) -> tuple[list[TruckRoute], list[Job], str]:
    """Route first, cluster second: one tour of the fraction's bins, cut into trucks and trips."""
    sites = fleet.disposal_sites(fraction)
    first_job = 1 + len(sites)
    disposal = np.arange(1, first_job)
    nearest_site = disposal[np.argmin(dist[:, disposal], axis=1)]  # per node: its closest disposal site
    nodes = np.array([0, *range(first_job, len(dist))])
    sub = dist[np.ix_(nodes, nodes)].copy()
    # The tour closes through a disposal site (the truck comes home empty), so it should end near one.
    sub[1:, 0] = (dist[:, disposal] + dist[disposal, 0][None, :]).min(axis=1)[nodes[1:]]
    order, used = solve_route(fleet.depot, [(j.lat, j.lon) for j in jobs], solver=solver, matrix=sub)
    capacity = fraction.capacity_bin_l
    speed = fleet.speed_kmh
    end_of_shift = start + timedelta(hours=fleet.shift_hours)
    routes: list[TruckRoute] = []
    queue = list(order)
    trucks = iter(fraction.trucks)

    def unload(w: _Walk) -> None:
        site = int(nearest_site[w.node])
        s = sites[site - 1]
        w.go(site, "disposal", s.name, (s.lat, s.lon), float(dist[w.node, site]), speed, fleet.unload_s, 0.0)

    def home(w: _Walk) -> None:
        if w.load > 0:
            unload(w)
        w.go(0, "depot", "depot", fleet.depot, float(dist[w.node, 0]), speed, 0.0, 0.0)
        routes.append(TruckRoute(w.truck, fraction.name, w.visits))

    for truck in trucks:
        if not queue:
            break
        w = _Walk(truck, fraction.name, fleet.depot, start)
        while queue:
            job_index = queue[0]
            job = jobs[job_index]
            node = first_job + job_index
            if w.load > 0 and w.load + job.litres > capacity:
                unload(w)
            leg = float(dist[w.node, node])
            site = int(nearest_site[node])
            after = leg / speed + fleet.service_s / 3600 + (dist[node, site] + dist[site, 0]) / speed
            after += fleet.unload_s / 3600
            if w.clock + timedelta(hours=float(after)) > end_of_shift:
                break
            w.go(node, "bin", job.site_id, (job.lat, job.lon), leg, speed, fleet.service_s, w.load + job.litres, job)
            queue.pop(0)
        if len(w.visits) > 1:
            home(w)
        elif queue:  # not even one bin fits into a whole shift: the rest cannot be served by this fleet
            break
    return routes, [jobs[i] for i in queue], used


def route_fleet(
    jobs: Sequence[Job],
    fleet: Fleet,
    start: datetime,
    *,
    km: Distances | None = None,
    solver: FleetSolver = "heuristic",
) -> FleetPlan:
    """Routes of the day's trucks, starting at ``start`` (aware), one fraction after another in name order.
    ``solver="pyvrp"`` falls back to the heuristic where PyVRP is not installed or finds no feasible plan."""
    km = km or great_circle()
    by_fraction: dict[str, list[Job]] = {}
    for job in jobs:
        by_fraction.setdefault(fleet.fraction(job.waste_type).name, []).append(job)
    routes: list[TruckRoute] = []
    unplanned: list[Job] = []
    solvers = set()
    begin = start.astimezone(UTC)
    for name in sorted(by_fraction):
        seconds = vrp.MAX_SECONDS * len(by_fraction[name]) / len(jobs)  # the day's cap, shared by the bins
        r, left, used = _fraction_routes(by_fraction[name], fleet.fractions[name], fleet, begin, km, solver, seconds)
        routes += r
        unplanned += left
        solvers.add(used)
    tz = start.tzinfo
    local = [
        TruckRoute(
            r.truck,
            r.fraction,
            [
                Visit(
                    v.kind,
                    v.name,
                    v.lat,
                    v.lon,
                    v.arrival.astimezone(tz),
                    v.departure.astimezone(tz),
                    v.leg_km,
                    v.load_l,
                    v.job,
                )  # fmt: skip
                for v in r.visits
            ],
        )
        for r in routes
    ]
    return FleetPlan(local, unplanned, "+".join(sorted(solvers)) or "none", fleet.crew)
