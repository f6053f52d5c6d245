"""Route ordering for a collection round: haversine road-distance estimates, nearest neighbour + 2-opt, and
OR-Tools when it is installed. Pure, no I/O; :mod:`stadtpuls.planning.pickups` is the public entry point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["EARTH_KM", "Solver", "distance_matrix", "haversine_km", "solve_route", "tour_length"]

EARTH_KM = 6371.0088
ORTOOLS_TIME_LIMIT_S = 2.0

Solver = Literal["auto", "heuristic", "ortools"]


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    returned: np.ndarray = 2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return returned


def distance_matrix(points: Sequence[tuple[float, float]], *, road_factor: float = 1.3) -> np.ndarray:
    """Symmetric matrix of road-distance estimates (km) between ``(lat, lon)`` points."""
    if not points:
        return np.zeros((0, 0))
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lat, lon = arr[:, 0], arr[:, 1]
    return haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * road_factor


def tour_length(dist: np.ndarray, tour: Sequence[int] | np.ndarray, *, closed: bool = True) -> float:
    t = np.asarray(tour, dtype=np.int64)
    if t.size < 2:
        return 0.0
    length = float(dist[t[:-1], t[1:]].sum())
    return length + (float(dist[t[-1], t[0]]) if closed else 0.0)


def _nearest_neighbour(dist: np.ndarray) -> np.ndarray:
    n = dist.shape[0]
    tour = np.zeros(n, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    seen[0] = True
    cur = 0
    for k in range(1, n):
        row = np.where(seen, np.inf, dist[cur])
        cur = int(np.argmin(row))
        tour[k] = cur
        seen[cur] = True
    return tour


def _two_opt(dist: np.ndarray, tour: np.ndarray, max_passes: int = 50) -> np.ndarray:
    """Reverse segments while that shortens the closed tour; node 0 (the depot) stays first."""
    t = tour.copy()
    n = t.size
    if n < 4:
        return t
    for _ in range(max_passes):
        improved = False
        for i in range(1, n - 1):
            a, b = t[i - 1], t[i]
            j = np.arange(i + 1, n)
            c = t[j]
            d = t[(j + 1) % n]
            delta = dist[a, c] + dist[b, d] - dist[a, b] - dist[c, d]
            k = int(np.argmin(delta))
            if delta[k] < -1e-9:
                jj = int(j[k])
                t[i : jj + 1] = t[i : jj + 1][::-1]
                improved = True
        if not improved:
            break
    return t


def _ortools(dist: np.ndarray) -> np.ndarray | None:
    try:
        from ortools.constraint_solver import pywrapcp, routing_enums_pb2
    except ImportError:
        return None
    n = dist.shape[0]
    metres = np.rint(dist * 1000).astype(np.int64)
    manager = pywrapcp.RoutingIndexManager(n, 1, 0)
    model = pywrapcp.RoutingModel(manager)

    def cost(i: int, j: int) -> int:
        return int(metres[manager.IndexToNode(i), manager.IndexToNode(j)])

    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitCallback(cost))
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(ORTOOLS_TIME_LIMIT_S * 1000))
    solution = model.SolveWithParameters(params)
    if solution is None:
        return None
    order = []
    index = model.Start(0)
    while not model.IsEnd(index):
        order.append(manager.IndexToNode(index))
        index = solution.Value(model.NextVar(index))
    return np.asarray(order, dtype=np.int64)


def solve_route(
    depot: tuple[float, float],
    points: Sequence[tuple[float, float]],
    *,
    road_factor: float = 1.3,
    return_to_depot: bool = True,
    solver: Solver = "auto",
    matrix: np.ndarray | None = None,
) -> tuple[list[int], str]:
    """``(order, solver used)``: indices into ``points`` in visiting order from the depot. ``matrix`` (km between
    the depot, node 0, and the points) replaces the great-circle estimate, e.g. road distances from a router; the
    2-opt moves assume it symmetric between the points (the legs from and back to the depot may differ)."""
    if not points:
        return [], "none"
    if matrix is not None:
        if matrix.shape != (len(points) + 1, len(points) + 1):
            raise ValueError("matrix must be (points + 1) x (points + 1), the depot first")
        dist = np.array(matrix, dtype=np.float64)
    else:
        dist = distance_matrix([depot, *points], road_factor=road_factor)
    if not return_to_depot:
        dist[:, 0] = 0.0  # the way back is free: the closed tour becomes an open path from the depot
    best = _two_opt(dist, _nearest_neighbour(dist))
    used = "nearest-neighbour+2-opt"
    if solver in ("auto", "ortools") and len(points) > 2:
        found = _ortools(dist)
        if found is None and solver == "ortools":
            raise RuntimeError("solver 'ortools' requested but ortools is not installed")
        if found is not None and tour_length(dist, found) < tour_length(dist, best) - 1e-9:
            best, used = found, "ortools"
    return [int(i) - 1 for i in best[1:]], used
