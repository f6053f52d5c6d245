"""Waste pickup planning: fill-rate fits, selection for a service day and the truck's route. Pure, no I/O.

The API's ``/api/v1/waste/pickups`` and the waste-collection benchmark call the same functions::

    fit_fill_rate(times, fills, *, now=None) -> FillFit(rate_per_day, level_now)
    last_emptying(times, fills) -> int           index of the first reading after the last emptying
    BinState(site_id, lat, lon, level_pct, rate_per_day, at, threshold_pct)
        .level_at(t) -> float                     predicted fill % at t (rate >= 0, clipped to 0..100)
        .crossing_at() -> datetime | None         when the threshold is (or was) reached
    next_service_day(day, service_days) -> date  first service day strictly after ``day``
    day_start(day, tz, hour) -> datetime         aware start of a round on a local date
    select_bins(bins, start, next_start) -> list[Selected]
    route(depot, points, *, road_factor=1.3) -> list[int]
    plan(bins, *, depot, start, next_start, ...) -> Plan

Times are aware ``datetime`` objects; ``fit_fill_rate`` also takes ``numpy.datetime64`` arrays or epoch seconds.
Coordinates are ``(lat, lon)`` in degrees; distances are kilometres of road, estimated as great-circle
(haversine) distance times ``road_factor``. Routes start at the depot and, by default, return to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from .routing import distance_matrix, solve_route

__all__ = [
    "BinState",
    "FillFit",
    "Plan",
    "PlannedStop",
    "Selected",
    "day_start",
    "fit_fill_rate",
    "last_emptying",
    "next_service_day",
    "plan",
    "route",
    "select_bins",
    "theil_sen",
]

DAY_S = 86_400.0
DROP_PCT = 15.0  # a fall of at least this many points (that stays down) is an emptying
MIN_POINTS = 3  # readings needed in a cycle for its own rate
MIN_SPAN_S = 3 * 3600.0  # and the time they must span
MAX_CROSSING_DAYS = 36_525.0  # a predicted crossing further off than a century counts as none
MAX_FIT_POINTS = 160  # Theil-Sen is O(n^2): longer cycles are subsampled evenly

Reason = Literal["over_threshold", "predicted"]


class FillFit(NamedTuple):
    rate_per_day: float  # fill percentage points per day, >= 0
    level_now: float  # fitted fill % at ``now`` (default: the last reading), 0..100


def _seconds(times: Any) -> np.ndarray:
    arr = np.asarray(times)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ms]").astype(np.int64) / 1000.0
    if arr.dtype.kind == "O":
        return np.array([t.timestamp() for t in arr.ravel()], dtype=np.float64)
    return arr.astype(np.float64)


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Median of pairwise slopes and the median intercept; robust to a minority of outliers."""
    if x.size > MAX_FIT_POINTS:
        idx = np.unique(np.linspace(0, x.size - 1, MAX_FIT_POINTS).round().astype(np.int64))
        x, y = x[idx], y[idx]
    i, j = np.triu_indices(x.size, 1)
    dx = x[j] - x[i]
    ok = dx > 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0
    return slope, float(np.median(y - slope * x))


def _emptyings(fills: np.ndarray, drop_pct: float) -> np.ndarray:
    """Indices i where reading i starts a new cycle: a fall of ``drop_pct`` that the next readings confirm."""
    if fills.size < 2:
        return np.zeros(0, dtype=np.int64)
    cand = np.flatnonzero(fills[:-1] - fills[1:] >= drop_pct) + 1
    keep = []
    for i in cand:
        # One low echo is not a pickup: the low reading needs the next one low too, or two of the next three.
        # A low last reading waits for the next reading before it counts.
        after = fills[i : i + 3]
        low = fills[i - 1] - drop_pct
        if after.size >= 2 and (float(np.median(after)) if after.size == 3 else float(after.max())) <= low:
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def last_emptying(times: Any, fills: Any, *, drop_pct: float = DROP_PCT) -> int:
    """Index of the first reading after the last detected emptying (0 when none is seen). Times ascending."""
    f = np.asarray(fills, dtype=np.float64)
    starts = _emptyings(f, drop_pct)
    return int(starts[-1]) if starts.size else 0


def fit_fill_rate(times: Any, fills: Any, *, now: Any = None, drop_pct: float = DROP_PCT) -> FillFit:
    """Fill rate (%/day) and level of a bin from its readings since the last emptying (Theil-Sen fit).

    ``times`` ascending (aware datetimes, datetime64 or epoch seconds), ``fills`` in %. NaN readings are ignored.
    When the current cycle is too short for its own fit (fewer than 3 readings or under 3 hours), the rate of the
    previous cycle is used. A falling fit counts as rate 0: bins do not empty themselves.
    """
    t = _seconds(times)
    f = np.asarray(fills, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(f)
    t, f = t[ok], f[ok]
    if t.size == 0:
        return FillFit(0.0, 0.0)
    t_now = float(_seconds([now])[0]) if now is not None else float(t[-1])
    starts = _emptyings(f, drop_pct)
    s = int(starts[-1]) if starts.size else 0
    ct, cf = t[s:], f[s:]
    if ct.size >= MIN_POINTS and ct[-1] - ct[0] >= MIN_SPAN_S:
        slope, intercept = theil_sen((ct - t_now) / DAY_S, cf)
        rate = max(slope, 0.0)
        level = intercept if slope > 0 else float(np.median(cf[-MIN_POINTS:]))
        return FillFit(rate, float(np.clip(level, 0.0, 100.0)))
    rate = 0.0
    if starts.size:
        p = int(starts[-2]) if starts.size > 1 else 0
        pt, pf = t[p:s], f[p:s]
        if pt.size >= MIN_POINTS and pt[-1] - pt[0] >= MIN_SPAN_S:
            rate = max(theil_sen((pt - pt[-1]) / DAY_S, pf)[0], 0.0)
    level = float(cf[-1]) + rate * (t_now - float(ct[-1])) / DAY_S
    return FillFit(rate, float(np.clip(level, 0.0, 100.0)))


@dataclass(frozen=True)
class BinState:
    """A bin as the planner sees it: fill ``level_pct`` at time ``at``, rising ``rate_per_day`` points a day."""

    site_id: str
    lat: float
    lon: float
    level_pct: float
    rate_per_day: float
    at: datetime
    threshold_pct: float = 80.0
    waste_type: str = "residual"
    volume_l: float = 1100.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # carried through to the plan untouched

    def level_at(self, t: datetime) -> float:
        days = (t.timestamp() - self.at.timestamp()) / DAY_S  # absolute time, also across DST changes
        return float(min(100.0, max(0.0, self.level_pct + max(self.rate_per_day, 0.0) * max(days, 0.0))))

    def crossing_at(self) -> datetime | None:
        if self.level_pct >= self.threshold_pct:
            return self.at
        if self.rate_per_day <= 0:
            return None
        days = (self.threshold_pct - self.level_pct) / self.rate_per_day
        if days > MAX_CROSSING_DAYS:  # a rate of next to nothing: no crossing to speak of (nor one datetime holds)
            return None
        return self.at.astimezone(UTC) + timedelta(days=days)


@dataclass(frozen=True)
class Selected:
    bin: BinState
    reason: Reason
    crossing_at: datetime | None


@dataclass(frozen=True)
class PlannedStop:
    seq: int  # 1-based position in the route
    bin: BinState
    reason: Reason
    crossing_at: datetime | None
    arrival: datetime
    expected_fill_pct: float  # predicted fill at arrival
    leg_km: float  # road km from the previous stop (the depot for the first)


@dataclass(frozen=True)
class Plan:
    start: datetime
    next_start: datetime
    depot: tuple[float, float]
    stops: list[PlannedStop]
    distance_km: float  # whole route, including the way back when return_to_depot
    return_km: float
    solver: str

    @property
    def site_ids(self) -> list[str]:
        return [s.bin.site_id for s in self.stops]


def next_service_day(day: date, service_days: Iterable[int]) -> date:
    """First date strictly after ``day`` whose weekday (0 = Monday) is a service day."""
    days = set(service_days)
    if not days or any(d < 0 or d > 6 for d in days):
        raise ValueError("service_days must be weekdays 0..6, at least one")
    d = day + timedelta(days=1)
    while d.weekday() not in days:
        d += timedelta(days=1)
    return d


def day_start(day: date, tz: str | tzinfo, hour: float = 7.0) -> datetime:
    """The aware moment ``hour`` o'clock local time on ``day`` (the start of that day's round)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    h = int(hour)
    m = int(round((hour - h) * 60))
    return datetime.combine(day, time(h, m), tzinfo=zone)


def select_bins(
    bins: Iterable[BinState], start: datetime, next_start: datetime, *, slack_pct: float = 0.0
) -> list[Selected]:
    """Bins to empty on the round starting at ``start``: at or over their threshold then, or predicted to reach
    ``threshold - slack_pct`` before the next round starts at ``next_start``. Input order is kept."""
    out: list[Selected] = []
    for b in bins:
        if b.level_at(start) >= b.threshold_pct:
            out.append(Selected(b, "over_threshold", b.crossing_at()))
        elif b.level_at(next_start) >= b.threshold_pct - slack_pct:
            out.append(Selected(b, "predicted", b.crossing_at()))
    return out


def route(
    depot: tuple[float, float],
    points: Sequence[tuple[float, float]],
    *,
    road_factor: float = 1.3,
    return_to_depot: bool = True,
    solver: Literal["auto", "heuristic", "ortools"] = "auto",
) -> list[int]:
    """Visiting order (indices into ``points``) of a route from ``depot``: nearest neighbour improved by 2-opt, or
    OR-Tools when installed and ``solver`` is ``auto``/``ortools`` (the shorter of both is kept)."""
    return solve_route(depot, points, road_factor=road_factor, return_to_depot=return_to_depot, solver=solver)[0]


def plan(
    bins: Iterable[BinState],
    *,
    depot: tuple[float, float],
    start: datetime,
    next_start: datetime,
    road_factor: float = 1.3,
    speed_kmh: float = 25.0,
    service_s: float = 90.0,
    slack_pct: float = 0.0,
    return_to_depot: bool = True,
    solver: Literal["auto", "heuristic", "ortools"] = "auto",
) -> Plan:
    """Select the bins for the round starting at ``start`` and order them into a route from ``depot``.

    Arrival times assume ``speed_kmh`` between stops and ``service_s`` seconds at each bin; the expected fill at
    each stop is the bin's prediction at its arrival.
    """
    if next_start.timestamp() <= start.timestamp():
        raise ValueError("next_start must be after start")
    chosen = select_bins(bins, start, next_start, slack_pct=slack_pct)
    points = [(s.bin.lat, s.bin.lon) for s in chosen]
    order, used = solve_route(depot, points, road_factor=road_factor, return_to_depot=return_to_depot, solver=solver)
    nodes = [depot] + [points[i] for i in order]
    dist = distance_matrix(nodes, road_factor=road_factor)
    stops: list[PlannedStop] = []
    clock = start.astimezone(UTC)  # absolute time; arrivals are given back in the zone of ``start``
    total = 0.0
    for k, i in enumerate(order, start=1):
        leg = float(dist[k - 1, k])
        total += leg
        clock = clock + timedelta(hours=leg / speed_kmh)
        sel = chosen[i]
        stops.append(
            PlannedStop(
                k,
                sel.bin,
                sel.reason,
                sel.crossing_at,
                clock.astimezone(start.tzinfo),
                round(sel.bin.level_at(clock), 1),
                leg,
            )
        )
        clock = clock + timedelta(seconds=service_s)
    back = float(dist[len(order), 0]) if order and return_to_depot else 0.0
    return Plan(start, next_start, depot, stops, total + back, back, used)
