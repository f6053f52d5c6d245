"""A fraction's day as a vehicle-routing problem, solved by PyVRP (iterated local search over routes).

The model, per fraction:

- locations: the depot (node 0), the fraction's disposal sites (nodes 1 .. k), the day's bins;
- each truck leaves the depot at the shift start, empties bins (``pickup`` = the bin litres at the visit, against
  the body's ``capacity_bin_l``), unloads at any disposal site when it must (a reload depot whose
  ``service_duration`` is the unloading time) and ends its day at the disposal site nearest the depot; the way home
  from there is the same for every truck, so it is the vehicle's fixed cost and comes off its shift;
- every bin is optional for the solver: a bin to be emptied has a prize far above any detour, so the solver serves
  all such bins the shifts allow and the ones it cannot serve come back as left over; a bin the caller offers
  along the way has the prize of the detour it is worth, so the solver takes it only where it costs less (and a
  full fleet leaves it out first);
- distances are whole metres, durations whole seconds at the fleet's speed (rounded up, so a plan the solver finds
  feasible stays within the shift when it is walked again with exact kilometres).

Deterministic: a fixed seed and stopping criteria counted in iterations; a wall-clock cap only bounds very large
days (``MAX_SECONDS``), where it may cut the search at a different iteration on a busier machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_SECONDS", "Tour", "available", "solve_fraction"]

SEED = 42
NO_IMPROVEMENT = 500  # iterations without a better plan before the search stops
MAX_ITERATIONS = 10_000
MAX_SECONDS = 20.0  # a cap for a very large day (all fractions together); smaller ones stop on the iteration counts


def available() -> bool:
    try:
        import pyvrp  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class Tour:
    """One truck's day as node indices into the fraction's points (disposal sites 1 .. k, bins after them), the
    start at the depot left out; the last node is the disposal site where the truck unloads before going home."""

    nodes: list[int]


def solve_fraction(
    dist_km: np.ndarray,
    points: Sequence[tuple[float, float]],
    *,
    n_sites: int,
    litres: Sequence[float],
    prizes_km: Sequence[float | None],
    trucks: int,
    capacity_l: float,
    speed_kmh: float,
    shift_s: float,
    service_s: float,
    unload_s: float,
    seconds: float = MAX_SECONDS,
) -> tuple[list[Tour], list[int]] | None:
    """``(tours, left over bin indices)`` for one fraction, or None when PyVRP finds no feasible plan.

    ``points``: ``(lat, lon)`` of the depot, the ``n_sites`` disposal sites and the bins (in that order);
    ``dist_km``: the matrix between them; ``litres``: per bin, the bin litres at the visit; ``seconds``: a
    wall-clock cap on the search."""
    from pyvrp import Client, Depot, Location, ProblemData, VehicleType, solve
    from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria, NoImprovement

    n_bins = len(litres)
    first_bin = 1 + n_sites
    metres = np.ceil(np.asarray(dist_km, dtype=np.float64) * 1000.0).astype(np.int64)
    np.fill_diagonal(metres, 0)
    travel_s = np.ceil(metres * (3.6 / speed_kmh)).astype(np.int64)
    np.fill_diagonal(travel_s, 0)
    end = 1 + int(np.argmin(metres[1:first_bin, 0]))  # the disposal site nearest the depot ends the day
    home_s = int(travel_s[end, 0]) + math.ceil(unload_s)
    duty = math.floor(shift_s) - home_s
    if duty <= 0:
        return None
    # Positions (km east and north of the depot) only describe the places; the solver reads the matrices.
    lat0, lon0 = points[0]
    east = 111.2 * math.cos(math.radians(lat0))
    locations = [Location((lon - lon0) * east, (lat - lat0) * 111.2) for lat, lon in points]
    depots = [Depot(0), *(Depot(s, service_duration=math.ceil(unload_s)) for s in range(1, first_bin))]
    # Leaving out a bin to be emptied costs more than any detour or extra trip and than every optional prize.
    must = int(4 * metres.max() + metres[end, 0] + 1_000_000)
    must += sum(math.ceil(p * 1000.0) for p in prizes_km if p is not None)
    clients = [
        Client(
            first_bin + k,
            pickup=[math.ceil(litres[k])],
            service_duration=math.ceil(service_s),
            prize=must if prize is None else math.floor(prize * 1000.0),
            required=False,
        )
        for k, prize in enumerate(prizes_km)
    ]
    vehicle = VehicleType(
        trucks,
        capacity=[math.floor(capacity_l)],
        start_depot=0,
        end_depot=end,
        fixed_cost=int(metres[end, 0]),
        shift_duration=duty,
        reload_depots=list(range(1, first_bin)),
    )
    # (PyVRP's stub spells the matrices np.ndarray[int], which no array matches.)
    data = ProblemData(locations, clients, depots, [vehicle], [metres], [travel_s])  # type: ignore[list-item]
    stop = MultipleCriteria([NoImprovement(NO_IMPROVEMENT), MaxIterations(MAX_ITERATIONS), MaxRuntime(seconds)])
    best = solve(data, stop, seed=SEED, collect_stats=False, display=False).best
    if not best.is_feasible():
        return None
    tours: list[Tour] = []
    served: set[int] = set()
    for route in best.routes():
        nodes: list[int] = []
        for activity in list(route)[1:]:  # the first is the start at the depot
            if activity.is_client():
                nodes.append(first_bin + activity.idx)
                served.add(activity.idx)
            else:
                nodes.append(activity.idx)  # depot index k >= 1 is disposal site node k
        tours.append(Tour(nodes))
    return tours, [k for k in range(n_bins) if k not in served]
