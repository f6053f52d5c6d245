from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from stadtpuls.planning import routing
from stadtpuls.planning.routing import distance_matrix, haversine_km, solve_route, tour_length


def test_haversine_and_road_factor() -> None:
    one_degree = float(haversine_km(np.array(51.0), np.array(12.0), np.array(52.0), np.array(12.0)))
    assert one_degree == pytest.approx(111.2, abs=0.1)
    m = distance_matrix([(51.0, 12.0), (52.0, 12.0)], road_factor=1.3)
    assert m[0, 1] == m[1, 0] == pytest.approx(1.3 * one_degree) and m[0, 0] == 0


def test_auto_keeps_the_shorter_of_heuristic_and_ortools(monkeypatch: pytest.MonkeyPatch) -> None:
    pts = [(51.0, 12.0 + 0.01 * k) for k in (3, 1, 2, 4)]
    monkeypatch.setattr(routing, "_ortools", lambda dist: np.array([0, 4, 1, 3, 2]))  # a worse tour
    order, used = solve_route((51.0, 12.0), pts, solver="auto")
    assert used == "nearest-neighbour+2-opt"
    best = np.array([0, *(i + 1 for i in order)])
    monkeypatch.setattr(routing, "_ortools", lambda dist: best.copy())  # equal: the heuristic stays
    assert solve_route((51.0, 12.0), pts, solver="auto")[1] == "nearest-neighbour+2-opt"
    dist = distance_matrix([(51.0, 12.0), *pts])
    assert tour_length(dist, best) == pytest.approx(2 * 0.04 * 111.2 * 1.3 * np.cos(np.radians(51.0)), rel=1e-2)


@pytest.mark.skipif(importlib.util.find_spec("ortools") is not None, reason="ortools is installed")
def test_asking_for_ortools_without_it_installed_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="ortools"):
        solve_route((51.0, 12.0), [(51.0, 12.1), (51.1, 12.0), (51.1, 12.1)], solver="ortools")
    assert solve_route((51.0, 12.0), [(51.0, 12.1), (51.1, 12.0), (51.1, 12.1)], solver="auto")[1] != "ortools"
