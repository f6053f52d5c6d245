"""Waste collection: which bins are emptied on which service day, and when the truck reaches each of them.

A schedule is a callable ``(day, now_us) -> site ids in visiting order``, asked at 05:00 local time of every
service day. :class:`FixedSchedule` is the classic weekly round (each district on its weekday; bins that usually
fill fast two or three times a week); the pickup benchmark passes a callable that asks the hub's planner instead.
Trucks start at 06:00 and need five minutes per bin; more than 96 bins in a day are shared among several trucks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from .city import Site
from .timebase import US, from_us, to_us

__all__ = ["FixedSchedule", "Schedule", "planning_days", "visit_times"]

Schedule = Callable[[date, int], Sequence[str]]

PLAN_HOUR = 5
ROUND_START = time(6, 0)
STOP_US = 5 * 60 * US
STOPS_PER_TRUCK = 96


def planning_days(w0: int, w1: int, tz: ZoneInfo, service_days: Sequence[int]) -> list[tuple[date, int]]:
    """Service days whose planning instant (05:00 local) lies in ``[w0, w1)``: ``(day, instant_us)``."""
    first = from_us(w0).astimezone(tz).date() - timedelta(days=1)
    out = []
    for k in range(int((w1 - w0) // (86400 * US)) + 3):
        day = first + timedelta(days=k)
        at = to_us(datetime.combine(day, time(PLAN_HOUR), tzinfo=tz))
        if w0 <= at < w1 and day.weekday() in service_days:
            out.append((day, at))
    return out


def visit_times(day: date, tz: ZoneInfo, n: int) -> np.ndarray:
    """Arrival instants of the stops of one collection day, in visiting order."""
    start = to_us(datetime.combine(day, ROUND_START, tzinfo=tz))
    return start + (np.arange(n) % STOPS_PER_TRUCK) * STOP_US


class FixedSchedule:
    """The weekly round as an operator sets it up from experience: every bin on its district's weekday
    (``params["district"]``, 0 = the first service day); a bin that usually fills more than ``round_pct`` percent
    a week (``expected_week_pct``) twice a week (three service days apart), more than twice that three times (the
    first, middle and last service day). Within a day bins are visited by angle around the town centre."""

    def __init__(
        self,
        bins: Sequence[Site],
        expected_week_pct: Iterable[float],
        center: tuple[float, float],
        service_days: Sequence[int] = (0, 1, 2, 3, 4),
        round_pct: float = 75.0,
    ) -> None:
        self.days: dict[int, list[tuple[float, str]]] = {d: [] for d in range(7)}
        days = sorted(service_days)
        for site, week_pct in zip(bins, list(expected_week_pct), strict=True):
            district = int(site.params.get("district", 0)) % len(days)
            rounds = min(3, max(1, int(np.ceil(week_pct / round_pct))))
            weekdays = {days[district]}
            if rounds == 2:
                weekdays.add(days[(district + 3) % len(days)])
            elif rounds == 3:
                weekdays = {days[0], days[len(days) // 2], days[-1]}
            angle = float(np.arctan2((site.lat or 0) - center[0], (site.lon or 0) - center[1]))
            for wd in weekdays:
                self.days[wd].append((angle, site.site_id))
        for entries in self.days.values():
            entries.sort()

    def __call__(self, day: date, now_us: int) -> list[str]:
        return [site_id for _, site_id in self.days[day.weekday()]]
