"""A lot's occupancy over time from its sensors' events, with each space's state carried forward between events.

Pure (numpy): the routes fetch events, this module turns them into buckets. Buckets are aligned in the reporting
time zone (days are local days, 23 or 25 hours long around DST changes). Each bucket reports the state at its end
and the mean / minimum over sample instants inside it (every 5 minutes for 15-minute buckets, every hour for hour
and day buckets).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np

__all__ = ["BUCKETS", "Bucket", "bucket_edges", "occupancy"]

Bucket = Literal["15min", "hour", "day"]
BUCKETS: dict[str, timedelta] = {"15min": timedelta(minutes=15), "hour": timedelta(hours=1), "day": timedelta(days=1)}
SAMPLE: dict[str, timedelta] = {"15min": timedelta(minutes=5), "hour": timedelta(hours=1), "day": timedelta(hours=1)}


def bucket_edges(start: datetime, end: datetime, bucket: Bucket, tz: str) -> list[datetime]:
    """Bucket boundaries covering ``[start, end)``, the first floored to a local bucket boundary."""
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    edges: list[datetime] = []
    if bucket == "day":
        d = local.date()
        while True:
            edge = datetime(d.year, d.month, d.day, tzinfo=zone)
            edges.append(edge)
            if edge >= end:
                break
            d += timedelta(days=1)
        return edges
    step = BUCKETS[bucket]
    if bucket == "hour":
        first = local.replace(minute=0, second=0, microsecond=0)
    else:
        first = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    t = first.astimezone(ZoneInfo("UTC"))
    while True:
        edges.append(t.astimezone(zone))
        if t >= end:
            break
        t += step
    return edges


def _space_states(
    events: Sequence[tuple[str, datetime, bool]],
    sensors: Sequence[tuple[str, str, int]],
    samples: np.ndarray,
    factor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Per sample instant: counts of occupied and free spaces (fresh state only)."""
    by_dev: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for dev, t, occ in events:
        by_dev[dev].append((t.timestamp(), occ))
    by_space: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for dev, space, interval in sensors:
        by_space[space].append((dev, interval))
    occupied = np.zeros(samples.size, dtype=np.int64)
    free = np.zeros(samples.size, dtype=np.int64)
    for devs in by_space.values():
        best_t = np.full(samples.size, -np.inf)
        best_occ = np.zeros(samples.size, dtype=bool)
        best_fresh = np.zeros(samples.size, dtype=bool)
        for dev, interval in devs:
            rows = by_dev.get(dev)
            if not rows:
                continue
            times = np.array([r[0] for r in rows])
            states = np.array([r[1] for r in rows], dtype=bool)
            idx = np.searchsorted(times, samples, side="right") - 1
            has = idx >= 0
            last_t = np.where(has, times[np.clip(idx, 0, None)], -np.inf)
            newer = last_t > best_t
            best_t = np.where(newer, last_t, best_t)
            best_occ = np.where(newer, states[np.clip(idx, 0, None)] & has, best_occ)
            best_fresh = np.where(newer, has & (samples - last_t <= factor * interval), best_fresh)
        occupied += best_fresh & best_occ
        free += best_fresh & ~best_occ
    return occupied, free


def occupancy(
    events: Sequence[tuple[str, datetime, bool]],
    sensors: Sequence[tuple[str, str, int]],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    bucket: Bucket,
    tz: str,
    capacity: int,
    factor: float = 2.5,
) -> list[dict[str, Any]]:
    """Buckets covering ``[start, end)`` (none after ``now``). ``events`` are ``(dev_eui, time, occupied)`` sorted
    by device and time; ``sensors`` are ``(dev_eui, space_id, report_interval_s)``."""
    edges = bucket_edges(start, min(end, now), bucket, tz)
    if len(edges) < 2:
        return []
    step = SAMPLE[bucket].total_seconds()
    out_samples: list[float] = []
    owner: list[int] = []
    for k in range(len(edges) - 1):
        a, b = edges[k].timestamp(), min(edges[k + 1], now).timestamp()
        ts = np.arange(a + step, b + 1e-6, step)
        if ts.size == 0 or ts[-1] < b - 1e-6:
            ts = np.append(ts, b)
        out_samples.extend(ts.tolist())
        owner.extend([k] * ts.size)
    samples = np.asarray(out_samples)
    occ, free = _space_states(events, sensors, samples, factor)
    own = np.asarray(owner)
    rows = []
    for k in range(len(edges) - 1):
        sel = np.flatnonzero(own == k)
        last = sel[-1]
        o, f = int(occ[last]), int(free[last])
        rows.append(
            {
                "start": edges[k],
                "end": edges[k + 1],
                "occupied": o,
                "free": f,
                "unknown": max(capacity - o - f, 0),
                "occupied_avg": round(float(occ[sel].mean()), 2),
                "free_min": int(free[sel].min()),
            }
        )
    return rows
