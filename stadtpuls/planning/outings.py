"""When a fraction's trucks go out next, and so which of its bins today's outing takes: a look-ahead per fraction.

Each bin of a fraction has a deadline, the last service day of the horizon whose round comes before the bin would
reach the urgent level (:data:`horizon.URGENT_PCT`); a bin that stays below it over the whole horizon has none. On
a day the fraction's trucks go out anyway, the outing takes every bin whose deadline comes before the fraction's
next outing. Which day that should be is a trade-off the rule weighs over the horizon:

- every outing costs ``outing_km``: depot, town, disposal site, depot, whatever the bins (see :func:`outing_km`),
  and one more trip to the disposal site (``reload_km``) for every body the outing fills beyond the first;
- a bin emptied before its deadline gives up the fill it could still have taken: ``pickup_km`` for each urgent
  level's worth of fill (the extra pickups it will need later), in proportion.

A plan is a set of outing days; each bin is emptied on the last outing before its deadline. The cheapest plan is
found by dynamic programming over the days of the horizon (:func:`next_outing`): with outings on days ``d`` and
``d'`` (and none between), the outing on ``d`` empties the bins whose deadline is in ``d .. d' - 1``. Only today's
part of it is used; tomorrow's plan looks again with tomorrow's readings (rolling horizon). Pure numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .rounds import Distances

__all__ = ["PICKUP_KM", "OutingCost", "deadlines", "next_outing", "outing_cost"]

PICKUP_KM = 4.0  # an urgent level's worth of fill given up is worth this many km


@dataclass(frozen=True)
class OutingCost:
    """What one outing of a fraction costs: ``outing_km`` (depot, town, disposal site, depot), ``reload_km`` for
    each further trip to the disposal site, and the bin litres ``capacity_l`` a body takes."""

    outing_km: float
    reload_km: float
    capacity_l: float


def deadlines(levels: np.ndarray, urgent_pct: float) -> np.ndarray:
    """Per bin (row of ``levels``: predicted fill % at the rounds of days 0 .. H), the last day ``k < H`` whose
    next round finds it still under ``urgent_pct``: the first ``k`` with ``levels[:, k + 1] >= urgent_pct``;
    ``H`` when there is none within the horizon."""
    n, days = levels.shape
    horizon = days - 1
    if n == 0 or horizon < 1:
        return np.full(n, horizon, dtype=np.int64)
    urgent = levels[:, 1:] >= urgent_pct
    out: np.ndarray = np.where(urgent.any(axis=1), urgent.argmax(axis=1), horizon).astype(np.int64)
    return out


def next_outing(
    levels: np.ndarray,
    litres: np.ndarray,
    *,
    rates: np.ndarray,
    days: np.ndarray,
    urgent_pct: float,
    cost: OutingCost,
    today: np.ndarray | None = None,
    pickup_km: float = PICKUP_KM,
) -> int:
    """The day (1 .. H) of the fraction's next outing after today's in the cheapest plan over the horizon.

    ``levels``: predicted fill % of the fraction's bins at the rounds of days 0 .. H (today first); ``litres``:
    each bin's volume; ``rates``: its fill rate (% a day); ``days``: the rounds' times in days from today's;
    ``today``: the bins today's outing takes in any case. Today's outing takes the bins whose :func:`deadlines`
    come before the returned day; a returned ``H`` means none of the others needs an outing within the horizon.
    A bin emptied on an outing fills again from empty: the next outing comes before it would reach the urgent
    level again (unless it gets there within one round)."""
    n, n_days = levels.shape
    horizon = int(n_days) - 1
    if n == 0 or horizon < 1:
        return max(horizon, 1)
    due = deadlines(levels, urgent_pct)
    rows = np.arange(n)
    at_deadline = levels[rows, np.minimum(due, horizon)]
    always = np.zeros(n, dtype=bool) if today is None else today
    best = np.zeros(n_days)  # best[d]: the cheapest plan from an outing on day d on; best[H] = 0
    choice = np.full(n_days, horizon, dtype=np.int64)
    for d in range(horizon - 1, -1, -1):
        # refilled[i]: the last day bin i may wait for its next emptying when it is emptied on day d
        refill = rates[:, None] * (days[None, d + 1 :] - days[d]) >= urgent_pct
        refilled = np.where(refill.any(axis=1), d + refill.argmax(axis=1), horizon)
        costs = np.full(n_days, np.inf)
        for nxt in range(d + 1, n_days):
            taken = (due >= d) & (due < nxt) | (always if d == 0 else False)
            if nxt > max(d + 1, int(refilled[taken].min(initial=horizon))):
                break  # a bin emptied on d would be near overflowing again before nxt
            given_up = float(np.sum(at_deadline[taken] - levels[taken, d])) / urgent_pct
            volume = float(np.sum(litres[taken] * levels[taken, d])) / 100.0
            trips = max(1, math.ceil(volume / cost.capacity_l)) if cost.capacity_l > 0 else 1
            costs[nxt] = cost.outing_km + (trips - 1) * cost.reload_km + pickup_km * given_up + best[nxt]
        choice[d] = int(np.argmin(costs))  # the earliest of equally cheap days
        best[d] = costs[choice[d]]
    return int(choice[0])


def outing_cost(
    km: Distances,
    depot: tuple[float, float],
    site: tuple[float, float],
    bins: Sequence[tuple[float, float]],
    capacity_l: float,
) -> OutingCost:
    """A fraction's :class:`OutingCost`: depot to the middle of its bins, on to the disposal site ``site`` and back
    to the depot; a reload is the way from the middle of its bins to the disposal site and back."""
    if not bins:
        return OutingCost(0.0, 0.0, capacity_l)
    middle = (float(np.mean([b[0] for b in bins])), float(np.mean([b[1] for b in bins])))
    d = km([depot, middle, site])
    return OutingCost(float(d[0, 1] + d[1, 2] + d[2, 0]), float(d[1, 2] + d[2, 1]), capacity_l)
