"""Waste pickup planning, pure and without I/O: readings and fleet in, plan out.

:mod:`stadtpuls.planning.pickups` fits fill rates and keeps the one-truck daily plan (the benchmark's baseline);
:mod:`stadtpuls.planning.horizon` plans a service day for the fleet looking a week ahead, with a reason per bin
(:mod:`stadtpuls.planning.outings`: the optional look-ahead that picks each fraction's next outing);
:mod:`stadtpuls.planning.trucks` describes the fleet; :mod:`stadtpuls.planning.rounds` turns a day's bins into
trucks' routes with unloading trips, solved per fraction by PyVRP (:mod:`stadtpuls.planning.vrp`) or cut from one
tour that :mod:`stadtpuls.planning.routing` orders (distance estimates, nearest neighbour + 2-opt, OR-Tools when
installed). The API, the benchmarks and the dashboards import it; it
imports nothing of theirs.
"""

from .horizon import Choice, DayPlan, plan_day
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
from .rounds import FleetPlan, Job, TruckRoute, Visit, route_fleet
from .routing import EARTH_KM, distance_matrix, haversine_km, solve_route, tour_length
from .trucks import DisposalSite, Fleet, FleetConfigError, Fraction, default_fleet, fleet_from_mapping

__all__ = [
    "DROP_PCT",
    "EARTH_KM",
    "BinState",
    "Choice",
    "DayPlan",
    "DisposalSite",
    "FillFit",
    "Fleet",
    "FleetConfigError",
    "FleetPlan",
    "Fraction",
    "Job",
    "Plan",
    "PlannedStop",
    "Selected",
    "TruckRoute",
    "Visit",
    "day_start",
    "default_fleet",
    "distance_matrix",
    "fit_fill_rate",
    "fleet_from_mapping",
    "haversine_km",
    "last_emptying",
    "next_service_day",
    "plan",
    "plan_day",
    "route",
    "route_fleet",
    "select_bins",
    "solve_route",
    "tour_length",
]
