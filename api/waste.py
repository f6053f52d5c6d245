"""A bin's status from its readings: fitted level and rate (:mod:`stadtpuls.planning`), predicted threshold
crossing, the last emptying, and flags; and the planner's view of it (:func:`bin_state`). Pure; the routes fetch
the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stadtpuls.planning import BinState, fit_fill_rate, last_emptying
from stadtpuls.planning.horizon import SILENT

__all__ = ["DEFAULT_THRESHOLD", "FIT_WINDOW_DAYS", "Limits", "bin_state", "bin_status"]

DEFAULT_VOLUME_L = 1100.0  # a bin without a stated volume counts as the common 1,100 l container
DEFAULT_THRESHOLD = 80.0
FIT_WINDOW_DAYS = 21
SILENT_FACTOR = 2.5


@dataclass(frozen=True)
class Limits:
    battery_low_pct: float
    battery_low_v: float


def _epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def bin_status(
    meta: dict[str, Any],
    series: tuple[np.ndarray, np.ndarray] | None,
    last: dict[str, Any] | None,
    *,
    at: datetime,
    limits: Limits,
) -> dict[str, Any]:
    """One bin as :class:`api.models.waste.BinPublic` fields, and ``fill_at_last_pct`` (not public) for the planner:
    the fit's level at the last reading when that is older than the planner's ``SILENT`` (else None)."""
    threshold = float(meta["threshold_pct"]) if meta["threshold_pct"] is not None else DEFAULT_THRESHOLD
    fill = rate = full_at = emptied = at_last = None
    last_at = last["time"] if last else None
    if series is not None and series[0].size:
        times, fills = series
        fit = fit_fill_rate(times, fills, now=at.timestamp())
        fill, rate = round(fit.level_now, 1), round(fit.rate_per_day, 2)
        emptied = _epoch(float(times[last_emptying(times, fills)]))
        state = BinState(meta["site_id"], 0.0, 0.0, fit.level_now, fit.rate_per_day, at, threshold)
        full_at = state.crossing_at()
        if last_at is not None and at - last_at > SILENT:
            at_last = round(fit_fill_rate(times, fills, now=last_at.timestamp()).level_now, 1)
    battery_v = last["battery_v"] if last else None
    battery_pct = last["battery_pct"] if last else None
    battery_low = (battery_pct is not None and battery_pct < limits.battery_low_pct) or (
        battery_pct is None and battery_v is not None and battery_v < limits.battery_low_v
    )
    interval = meta["report_interval_s"] or 3600
    silent = last_at is None or (at - last_at).total_seconds() > SILENT_FACTOR * interval
    return {
        "site_id": meta["site_id"],
        "name": meta["name"],
        "waste_type": meta["waste_type"],
        "volume_l": meta.get("volume_l"),
        "lat": meta["lat"],
        "lon": meta["lon"],
        "dev_eui": meta["dev_eui"],
        "threshold_pct": threshold,
        "fill_pct": fill,
        "last_fill_pct": last["fill_pct"] if last else None,
        "last_reading_at": last_at,
        "rate_per_day": rate,
        "predicted_full_at": full_at,
        "emptied_at": emptied,
        "battery_v": battery_v,
        "battery_pct": battery_pct,
        "flags": {
            "battery_low": bool(battery_low),
            "silent": silent,
            "over_threshold": fill is not None and fill >= threshold,
        },
        "fill_at_last_pct": at_last,
    }


def bin_state(status: dict[str, Any], at: datetime) -> BinState | None:
    """The planner's view of a bin (``at``: the plan's ``now``); ``None`` without a position or a reading.

    A bin whose last reading is older than the planner's ``SILENT`` is seen at its last reading (the fit's level
    then), so that the plan can tell it is silent (:func:`stadtpuls.planning.horizon.plan_day`); any other at ``at``
    with its fitted level now, as the bins endpoints report it."""
    if status["fill_pct"] is None or status["lat"] is None or status["lon"] is None:
        return None
    level, when = float(status["fill_pct"]), at
    if status.get("fill_at_last_pct") is not None and status["last_reading_at"] is not None:
        level, when = float(status["fill_at_last_pct"]), status["last_reading_at"]
    return BinState(
        status["site_id"],
        float(status["lat"]),
        float(status["lon"]),
        level,
        float(status["rate_per_day"] or 0.0),
        when,
        float(status["threshold_pct"]),
        status["waste_type"] or "residual",
        float(status.get("volume_l") or DEFAULT_VOLUME_L),
        extra=status,
    )
