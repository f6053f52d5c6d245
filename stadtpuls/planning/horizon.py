"""Plan the week, not the day: which bins a service day's trucks empty, each with its reason, and the fleet's routes.

Every bin has a district day: the town is cut into as many sectors around the depot as there are service days a
week (equal numbers of bins, the first cut at the widest empty angle). On a service day, looking ahead over the
next week of service days (rolling horizon):

1. ``over_threshold``: the bin is at or over its threshold when the round starts;
2. ``predicted``: it would cross its threshold before the next service day's round;
3. ``district`` (only with ``districts=True``): today is its district day and it would cross its threshold before
   the district's next day;
4. a fraction's trucks go out only when one of its bins is pinned or would reach ``urgent_pct`` (92.5 %) before
   the next round; otherwise its bins that are over the threshold but far from overflowing wait a day, and the
   outing (depot, town, disposal site, depot) is saved;
5. ``on_the_way``: a bin at ``along_pct`` or more that would cross its threshold before its district's next day,
   of a fraction whose trucks go out today. With the routing solver (``solver="pyvrp"``, the default) every such
   bin is offered to it with a prize of ``detour_km``: the solver takes it where serving it costs less than that
   detour on the day's routes. With the tour heuristic, such a bin is taken when it lies within ``detour_km / 2``
   of a bin its fraction's truck empties anyway;
6. a far, half-empty bin waits. Operators ``pin`` bins (always taken) and ``skip`` bins (never taken, even when
   due; the plan lists them);
7. ``before_next_outing`` (only with ``look_ahead=True``): a fraction whose trucks go out also takes its bins that
   would reach ``urgent_pct`` before its next outing, chosen over the next two weeks (:mod:`.outings`). Off by
   default: fewer outings left more bins waiting near overflowing in ``bench.pickups`` (figures in the README).

A bin's state is its fitted level at its last reading (``BinState.at``). A bin silent for more than ``SILENT``
before ``now`` (when the states were read; without it no bin counts as silent) is predicted on from there until
the prediction reaches ``urgent_pct``; the plan took it then, so it counts as emptied each time its prediction
reaches ``urgent_pct`` and filling again at its rate (its sensor cannot report the emptying; a prediction stuck at
100 % would send its fraction's trucks out every day).

The threshold is the operator's target, 100 % is the overflow that must not happen: step 4 lets a bin run past
its threshold for a day when no bin of its fraction is near overflowing. District days (step 3) group the bins
into one part of town a day, but they empty bins long before they are full: in ``bench.pickups`` they cost more
pickups than they saved km, so they are off by default (figures in the README).

The chosen bins go to :func:`rounds.route_fleet`; when the fleet cannot serve them all within its shifts, the
optional ones (on the way, then district) are left out first: the solver weighs them below the others, the
heuristic's plan is made again without them. Pure: readings and fleet in, plan out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np

from .outings import PICKUP_KM, OutingCost, deadlines, next_outing, outing_cost
from .pickups import BinState, day_start, next_service_day
from .rounds import Distances, FleetPlan, FleetSolver, Job, great_circle, route_fleet
from .trucks import Fleet

__all__ = ["Choice", "DayPlan", "Why", "choose_bins", "district_days", "plan_day", "service_starts"]

Why = Literal["pinned", "over_threshold", "predicted", "before_next_outing", "district", "on_the_way"]
# dropped in this order when the fleet is short
OPTIONAL: tuple[Why, ...] = ("on_the_way", "district", "before_next_outing")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ALONG_PCT = 50.0
DETOUR_KM = 1.0
URGENT_PCT = 92.5  # a fraction's trucks go out when one of its bins would reach this before the next round
DISTRICT_KM = 100.0  # with the solver: a district bin is worth any detour in town
LOOK_AHEAD_WEEKS = 2  # the horizon of the look-ahead per fraction
SILENT = timedelta(hours=12)  # a bin whose last reading is older than this at the round is silent


@dataclass(frozen=True)
class Choice:
    bin: BinState
    why: Why
    note: str  # for the operator: "over threshold", "predicted to overflow Thursday", "on the way, 72 %"
    crossing_at: datetime | None

    def litres(self, at: datetime) -> float:
        return self.bin.volume_l * self.bin.level_at(at) / 100.0


@dataclass(frozen=True)
class DayPlan:
    day: date
    start: datetime
    next_start: datetime
    fleet: FleetPlan
    choices: dict[str, Choice]  # site_id -> why it is in the plan (planned or not: see fleet.unplanned)
    skipped: list[str]  # operator skips that the rules would have taken
    district: dict[str, int]  # site_id -> index of its district day in the service week

    @property
    def site_ids(self) -> list[str]:
        return [v.name for r in self.fleet.routes for v in r.bins]


def service_starts(day: date, service_days: Iterable[int], tz: str, hour: float, n: int) -> list[datetime]:
    """Round starts of ``day`` and the next ``n - 1`` service days."""
    days = tuple(service_days)
    out = [day_start(day, tz, hour)]
    d = day
    for _ in range(n - 1):
        d = next_service_day(d, days)
        out.append(day_start(d, tz, hour))
    return out


def district_days(bins: Sequence[BinState], depot: tuple[float, float], n_days: int) -> dict[str, int]:
    """Sector ``0 .. n_days - 1`` of each bin around the depot: equal counts, cut first at the widest empty angle."""
    if not bins:
        return {}
    lat = np.array([b.lat for b in bins])
    lon = np.array([b.lon for b in bins]) * np.cos(np.radians(depot[0]))
    angle = np.arctan2(lat - depot[0], lon - depot[1] * np.cos(np.radians(depot[0])))
    order = np.lexsort((np.array([b.site_id for b in bins]), angle))
    sorted_angle = angle[order]
    gaps = np.diff(np.append(sorted_angle, sorted_angle[0] + 2 * np.pi))
    first = (int(np.argmax(gaps)) + 1) % len(bins)
    ring = np.roll(order, -first)
    sector = np.empty(len(bins), dtype=np.int64)
    sector[ring] = np.arange(len(bins)) * n_days // len(bins)
    return {b.site_id: int(s) for b, s in zip(bins, sector, strict=True)}


def _predicted_note(b: BinState, crossing: datetime | None, next_start: datetime) -> str:
    """ "predicted to overflow Thursday" when the bin would reach 100 % before the next round, else the day it
    crosses its threshold."""
    tz = next_start.tzinfo
    if b.rate_per_day > 0:
        full_at = b.at + timedelta(days=(100.0 - b.level_pct) / b.rate_per_day)
        if full_at < next_start:
            return f"predicted to overflow {WEEKDAYS[full_at.astimezone(tz).weekday()]}"
    if crossing is None:
        return "predicted over threshold"
    return f"predicted over threshold {WEEKDAYS[crossing.astimezone(tz).weekday()]}"


def choose_bins(
    bins: Sequence[BinState],
    *,
    starts: Sequence[datetime],
    district: Mapping[str, int],
    today: int,
    depot: tuple[float, float],
    km: Distances,
    pins: Collection[str] = (),
    skips: Collection[str] = (),
    along_pct: float = ALONG_PCT,
    detour_km: float = DETOUR_KM,
    urgent_pct: float = URGENT_PCT,
    districts: bool = False,
    along: Literal["near", "solver"] = "near",
    outings: Mapping[str, OutingCost] | None = None,
    pickup_km: float = PICKUP_KM,
) -> tuple[list[Choice], list[str]]:
    """The bins for the round at ``starts[0]`` (see the module docstring) and the skipped ones the rules wanted.

    ``starts``: the next week of round starts, today first; ``district``: site_id -> district day index;
    ``today``: today's district index; ``along``: "near" takes the waiting bins within ``detour_km / 2`` of a
    chosen bin, "solver" offers every waiting bin of a fraction that goes out (the routing solver takes those
    whose detour is worth it)."""
    start = starts[0]
    n_days = len({t.weekday() for t in starts[1:]})  # the service days of a week, after today
    weekday_of = {k: starts[k].weekday() for k in range(len(starts))}
    chosen: list[Choice] = []
    skipped: list[str] = []
    waiting: list[tuple[BinState, datetime]] = []
    for b in bins:
        home = district.get(b.site_id, today)
        # The district's next round after today; with a short horizon, the last start given.
        ahead = [t for k, t in enumerate(starts[1:], 1) if (today + k) % n_days == home] if n_days else []
        next_home = ahead[0] if ahead else starts[-1]
        crossing = b.crossing_at()
        why: Why | None = None
        note = ""
        if b.site_id in pins:
            why, note = "pinned", "pinned by the operator"
        elif b.level_at(start) >= b.threshold_pct:
            why, note = "over_threshold", "over threshold"
        elif len(starts) > 1 and b.level_at(starts[1]) >= b.threshold_pct:
            why, note = "predicted", _predicted_note(b, crossing, starts[1])
        elif districts and home == today and b.level_at(next_home) >= b.threshold_pct:
            nxt = WEEKDAYS[weekday_of[starts.index(next_home)]]
            why, note = "district", f"district day, would cross threshold before {nxt}"
        elif b.level_at(start) >= along_pct and b.level_at(next_home) >= b.threshold_pct:
            waiting.append((b, next_home))
        if why is None:
            continue
        if b.site_id in skips and why != "pinned":
            skipped.append(b.site_id)
            continue
        chosen.append(Choice(b, why, note, crossing))
    if len(starts) > 1:
        chosen = _outings(chosen, starts[1], urgent_pct)
    if outings is not None and len(starts) > 2:
        chosen = _before_next_outing(chosen, bins, starts, skips, urgent_pct, outings, pickup_km)
        taken = {c.bin.site_id for c in chosen}
        waiting = [(b, t) for b, t in waiting if b.site_id not in taken]
    if along == "solver":
        going = {c.bin.waste_type for c in chosen}
        chosen += [_along(b, start) for b, _ in waiting if b.waste_type in going and b.site_id not in skips]
    else:
        chosen += _on_the_way(chosen, waiting, start, depot, km, skips, detour_km)
    return chosen, skipped


def _along(b: BinState, start: datetime) -> Choice:
    return Choice(b, "on_the_way", f"on the way, {b.level_at(start):.0f} %", b.crossing_at())


def _outings(chosen: list[Choice], next_start: datetime, urgent_pct: float) -> list[Choice]:
    """Keep the choices of the fractions whose trucks go out today: those with a pinned bin or a bin that would
    reach ``urgent_pct`` before the next round. The other fractions' bins wait a day (the truck stays home)."""
    going = {c.bin.waste_type for c in chosen if c.why == "pinned" or c.bin.level_at(next_start) >= urgent_pct}
    return [c for c in chosen if c.bin.waste_type in going]


def _before_next_outing(
    chosen: list[Choice],
    bins: Sequence[BinState],
    starts: Sequence[datetime],
    skips: Collection[str],
    urgent_pct: float,
    outings: Mapping[str, OutingCost],
    pickup_km: float,
) -> list[Choice]:
    """Each going fraction's outing also takes the bins that would reach ``urgent_pct`` before its next outing
    (:func:`outings.next_outing` over ``starts``)."""
    going = sorted({c.bin.waste_type for c in chosen})
    taken = {c.bin.site_id for c in chosen}
    out = list(chosen)
    for kind in going:
        members = [b for b in bins if b.waste_type == kind and b.site_id not in skips]
        if kind not in outings or not members:
            continue
        levels = np.array([[b.level_at(t) for t in starts] for b in members])
        nxt = next_outing(
            levels,
            np.array([b.volume_l for b in members]),
            rates=np.array([max(b.rate_per_day, 0.0) for b in members]),
            days=np.array([(t - starts[0]).total_seconds() / 86_400.0 for t in starts]),
            urgent_pct=urgent_pct,
            cost=outings[kind],
            today=np.array([b.site_id in taken for b in members]),
            pickup_km=pickup_km,
        )
        due = deadlines(levels, urgent_pct)
        day = WEEKDAYS[starts[nxt].weekday()] if nxt < len(starts) - 1 else "a later day"
        for b, e in zip(members, due.tolist(), strict=True):
            if e < nxt and b.site_id not in taken:
                note = f"would be near overflowing before the next {kind} round ({day})"
                out.append(Choice(b, "before_next_outing", note, b.crossing_at()))
    return out


def _on_the_way(
    chosen: list[Choice],
    waiting: list[tuple[BinState, datetime]],
    start: datetime,
    depot: tuple[float, float],
    km: Distances,
    skips: Collection[str],
    detour_km: float,
) -> list[Choice]:
    """Waiting bins within ``detour_km / 2`` of a chosen bin of their waste type (or of the depot)."""
    out: list[Choice] = []
    candidates = [(b, t) for b, t in waiting if b.site_id not in skips]
    if not candidates:
        return out
    points = [depot, *((c.bin.lat, c.bin.lon) for c in chosen), *((b.lat, b.lon) for b, _ in candidates)]
    dist = km(points)
    n_chosen = len(chosen)
    kinds = np.array([c.bin.waste_type for c in chosen])
    for k, (b, _) in enumerate(candidates):
        row = dist[1 + n_chosen + k, 1 : 1 + n_chosen]
        same = row[kinds == b.waste_type] if n_chosen else row
        near = float(same.min()) if same.size else float("inf")
        if 2 * near <= detour_km:
            out.append(_along(b, start))
    return out


def plan_day(
    bins: Sequence[BinState],
    fleet: Fleet,
    *,
    day: date,
    service_days: Sequence[int],
    tz: str,
    pins: Collection[str] = (),
    skips: Collection[str] = (),
    km: Distances | None = None,
    solver: FleetSolver = "pyvrp",
    along_pct: float = ALONG_PCT,
    detour_km: float = DETOUR_KM,
    urgent_pct: float = URGENT_PCT,
    districts: bool = False,
    look_ahead: bool = False,
    pickup_km: float = PICKUP_KM,
    now: datetime | None = None,
) -> DayPlan:
    """The plan for ``day``: chosen bins, each truck's route, what was skipped. On a day that is not a service day
    (an extra round) no bin has its district day. ``now``: when the bins' states were read; a bin whose state
    (its last reading) is older than ``SILENT`` then is silent. Without it, no bin is."""
    days = sorted(set(service_days))
    if not days:
        raise ValueError("service_days must name at least one weekday")
    km = km or great_circle()
    weeks = LOOK_AHEAD_WEEKS if look_ahead else 1
    starts = service_starts(day, days, tz, fleet.shift_start_hour, weeks * len(days) + 1)
    if now is not None:
        bins = [_silent_bin(b, now, starts[0], urgent_pct) for b in bins]
    district = district_days(bins, fleet.depot, len(days))
    # Today's district; an extra round counts as the day before the next service day.
    today = days.index(day.weekday()) if day.weekday() in days else days.index(starts[1].weekday()) - 1
    chosen, skipped = choose_bins(
        bins,
        starts=starts,
        district=district,
        today=today,
        depot=fleet.depot,
        km=km,
        pins=pins,
        skips=skips,
        along_pct=along_pct,
        detour_km=detour_km,
        urgent_pct=urgent_pct,
        districts=districts,
        along="solver" if solver == "pyvrp" else "near",
        outings=_outing_costs(bins, fleet, km) if look_ahead else None,
        pickup_km=pickup_km,
    )
    # The solver weighs optional bins itself (on the way: worth detour_km; district: any detour, and both left out
    # first when the fleet is short); the tour heuristic serves all it can, so optional bins are dropped for it.
    prizes: dict[Why, float] = (
        {"on_the_way": detour_km, "district": DISTRICT_KM, "before_next_outing": DISTRICT_KM}
        if solver == "pyvrp"
        else {}
    )
    result, chosen = _route(chosen, fleet, starts[0], km, solver, prizes)
    for drop in OPTIONAL:
        if result.solver == "pyvrp" or not result.unplanned or not any(c.why == drop for c in chosen):
            continue
        chosen = [c for c in chosen if c.why != drop]
        result, chosen = _route(chosen, fleet, starts[0], km, solver, prizes)
    return DayPlan(day, starts[0], starts[1], result, {c.bin.site_id: c for c in chosen}, skipped, district)


def _silent_bin(b: BinState, now: datetime, start: datetime, urgent_pct: float) -> BinState:
    """A bin whose sensor has been silent since before ``now - SILENT`` (``b.at`` is its last reading), once its
    prediction has passed ``urgent_pct``: the plan took it then, so it counts as emptied each time its prediction
    reached ``urgent_pct`` and filling again at its rate since (a sensor that stays silent cannot report the
    emptying; without this, its prediction stays at 100 % and sends its fraction's trucks out every day)."""
    if now - b.at <= SILENT or b.rate_per_day <= 0 or b.level_at(start) < urgent_pct:
        return b
    cycle = urgent_pct / b.rate_per_day  # days from empty to the urgent level
    first = max(0.0, (urgent_pct - b.level_pct) / b.rate_per_day)  # days from the last reading to the urgent level
    since = (start - b.at).total_seconds() / 86_400.0 - first
    emptied = b.at + timedelta(days=first + cycle * np.floor(since / cycle))
    return replace(b, level_pct=0.0, at=emptied)


def _outing_costs(bins: Sequence[BinState], fleet: Fleet, km: Distances) -> dict[str, OutingCost]:
    """Per waste type, what an outing of its trucks costs (:func:`outings.outing_cost`): via the middle of its bins
    to the disposal site nearest the depot, where its trucks unload before going home."""
    out: dict[str, OutingCost] = {}
    for kind in sorted({b.waste_type for b in bins}):
        fraction = fleet.fraction(kind)
        sites = fleet.disposal_sites(fraction)
        to_depot = km([fleet.depot, *((s.lat, s.lon) for s in sites)])[0, 1:]
        site = sites[int(np.argmin(to_depot))]
        where = [(b.lat, b.lon) for b in bins if b.waste_type == kind]
        out[kind] = outing_cost(km, fleet.depot, (site.lat, site.lon), where, fraction.capacity_bin_l)
    return out


def _route(
    chosen: list[Choice],
    fleet: Fleet,
    start: datetime,
    km: Distances,
    solver: FleetSolver,
    prizes: Mapping[Why, float],
) -> tuple[FleetPlan, list[Choice]]:
    """The fleet's routes and the choices they keep: optional bins that the solver left out leave the plan (they
    are not left over for lack of trucks)."""
    jobs = [
        Job(c.bin.site_id, c.bin.lat, c.bin.lon, c.bin.waste_type, c.litres(start), c, prizes.get(c.why))
        for c in chosen
    ]
    result = route_fleet(jobs, fleet, start, km=km, solver=solver)
    declined = {j.site_id for j in result.unplanned if j.prize_km is not None}
    if not declined:
        return result, chosen
    kept = [j for j in result.unplanned if j.prize_km is None]
    return replace(result, unplanned=kept), [c for c in chosen if c.bin.site_id not in declined]
