"""Which stop a bus was at when its counters reported.

A row with a position (the Paxcounter's GPS fix) is at the nearest stop of the vehicle's line within
:data:`MAX_STOP_DISTANCE_M`; a row without a position (the door counter, which reports when the doors close just
after the Paxcounter) is at the last stop resolved for that vehicle, if that was at most :data:`MAX_STOP_AGE`
before. The tracker remembers the last stop per vehicle; on a miss it asks ``recent_stops``, e.g. after a restart:
:func:`load_recent_stops` reads the latest ``passenger_counts`` row with a stop per vehicle, at most
:data:`MAX_STOP_AGE` old.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import psycopg

from .registry import Stops

__all__ = ["MAX_STOP_AGE", "MAX_STOP_DISTANCE_M", "StopTracker", "load_recent_stops", "nearest_stop"]

MAX_STOP_DISTANCE_M = 300.0
MAX_STOP_AGE = np.timedelta64(10 * 60, "s")
_EARTH_M = 6_371_000.0
_RECENT_STOPS = """
SELECT DISTINCT ON (site_id) site_id, stop_id, (extract(epoch FROM time) * 1000000)::bigint
FROM passenger_counts
WHERE site_id = ANY(%s) AND stop_id IS NOT NULL AND time > now() - make_interval(secs => %s)
ORDER BY site_id, time DESC
"""


def load_recent_stops(conn: psycopg.Connection[Any], vehicles: list[str]) -> dict[str, tuple[str, np.datetime64]]:
    """The latest stored stop of each of ``vehicles`` at most :data:`MAX_STOP_AGE` ago: ``vehicle -> (stop_id,
    time)``, as :class:`StopTracker` remembers them."""
    age_s = float(MAX_STOP_AGE / np.timedelta64(1, "s"))
    rows = conn.execute(_RECENT_STOPS, (vehicles, age_s)).fetchall()
    return {v: (s, np.datetime64(int(us), "us")) for v, s, us in rows}


def nearest_stop(lat: float, lon: float, ids: list[str], lats: np.ndarray, lons: np.ndarray) -> str | None:
    """The id of the nearest stop within MAX_STOP_DISTANCE_M of (lat, lon), else None."""
    if not ids:
        return None
    p1, p2 = np.radians(lat), np.radians(lats)
    dphi, dlmb = p2 - p1, np.radians(lons - lon)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    dist = 2 * _EARTH_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    best = int(np.argmin(dist))
    return ids[best] if dist[best] <= MAX_STOP_DISTANCE_M else None


class StopTracker:
    """Last resolved stop per vehicle: ``vehicle -> (stop_id, time)``."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[str, np.datetime64]] = {}

    def resolve(
        self,
        vehicles: Sequence[str],
        lines: Sequence[str],
        times: np.ndarray,
        lat: np.ndarray,
        lon: np.ndarray,
        stops: Stops,
        recent_stops: Callable[[list[str]], dict[str, tuple[str, np.datetime64]]] | None = None,
    ) -> list[str | None]:
        """The stop of each passenger row, in the rows' time order per vehicle (see the module docstring)."""
        n = len(vehicles)
        out: list[str | None] = [None] * n
        order = np.argsort(times, kind="stable").tolist()
        has_pos = (np.isfinite(lat) & np.isfinite(lon)).tolist()
        missing = sorted({vehicles[i] for i in range(n) if vehicles[i] and not has_pos[i]} - set(self.last))
        if missing and recent_stops is not None:
            self.last.update(recent_stops(missing))
        for i in order:
            vehicle = vehicles[i]
            if not vehicle:
                continue
            t = times[i]
            if has_pos[i]:
                ids, lats, lons = stops.by_line.get(lines[i], ([], np.zeros(0), np.zeros(0)))
                stop = nearest_stop(float(lat[i]), float(lon[i]), ids, lats, lons)
                known = self.last.get(vehicle)
                if known is None or t >= known[1]:  # a late (reordered) report does not replace a newer one
                    self.last[vehicle] = (stop or "", t)  # "" = away from any stop
                out[i] = stop
            else:
                prev = self.last.get(vehicle)
                if prev is not None and abs(t - prev[1]) <= MAX_STOP_AGE:
                    out[i] = prev[0] or None
        return out
