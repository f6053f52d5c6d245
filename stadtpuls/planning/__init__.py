"""Waste pickup planning, pure and without I/O: readings and fleet in, plan out.

:mod:`stadtpuls.planning.pickups` fits fill rates, selects the bins of a service day and plans the round;
:mod:`stadtpuls.planning.routing` orders the stops (distance estimates, nearest neighbour + 2-opt, OR-Tools when
installed). The API, the benchmarks and the dashboards import it; it imports nothing of theirs.
"""

from .pickups import (
    DROP_PCT,
    BinState,
    FillFit,
    Plan,
    PlannedStop,
    Selected,
    day_start,
    fit_fill_rate,
    last_emptying,
    next_service_day,
    plan,
    route,
    select_bins,
)
from .routing import EARTH_KM, distance_matrix, haversine_km, solve_route, tour_length

__all__ = [
    "DROP_PCT",
    "EARTH_KM",
    "BinState",
    "FillFit",
    "Plan",
    "PlannedStop",
    "Selected",
    "day_start",
    "distance_matrix",
    "fit_fill_rate",
    "haversine_km",
    "last_emptying",
    "next_service_day",
    "plan",
    "route",
    "select_bins",
    "solve_route",
    "tour_length",
]
