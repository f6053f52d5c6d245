"""Waste operations dashboard: where the full bins are, which will be full soon, pickups, and failing sensors."""

from __future__ import annotations

from typing import Any

from .fragments import DEFAULT_THRESHOLD, bin_emptied, coarsest_rollup, latest, local_day, to_time
from .panels import (
    constant,
    dashboard,
    geomap,
    override,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)

__all__ = ["UID", "build"]

UID = "stadtpuls-waste"
WASTE_TYPE = "coalesce(s.waste_type, 'unknown') IN ($waste_type)"
FILL_STEPS = thresholds((None, "green"), (60, "yellow"), (80, "orange"), (95, "red"))
LAST_FILL = latest("bin_levels", "site_id", "s.site_id", "r.fill_pct, r.time")


def _bins_now(extra_where: str = "", *, join: str = "LEFT JOIN") -> str:
    lateral = LAST_FILL.replace("LEFT JOIN", join, 1)
    return f"""FROM sites s
{lateral} l ON true
WHERE s.kind = 'bin' AND {WASTE_TYPE}{extra_where}"""


MAP = f"""
SELECT s.site_id AS bin, s.name, coalesce(s.waste_type, 'unknown') AS waste_type,
       s.lat AS latitude, s.lon AS longitude, round(l.fill_pct::numeric, 1) AS fill_pct, l.time AS last_reading
{_bins_now(" AND s.lat IS NOT NULL AND s.lon IS NOT NULL")}
ORDER BY s.site_id
"""

OVER_THRESHOLD = f"""
SELECT s.site_id AS bin, s.name, coalesce(s.waste_type, 'unknown') AS waste_type,
       round(l.fill_pct::numeric, 1) AS fill_pct, {DEFAULT_THRESHOLD} AS threshold_pct, l.time AS last_reading
{_bins_now(f" AND l.fill_pct >= {DEFAULT_THRESHOLD}", join="JOIN")}
ORDER BY l.fill_pct DESC, s.site_id
"""

COUNT_OVER = f"""
SELECT count(*) FILTER (WHERE l.fill_pct >= {DEFAULT_THRESHOLD}) AS bins_over_threshold
{_bins_now()}
"""

AVERAGE_FILL = f"""
SELECT round(avg(l.fill_pct)::numeric, 1) AS average_fill_pct
{_bins_now()}
"""

# Hourly rows of the selected bins, with the previous hour's last reading (for emptyings).
_HOURLY = f"""h AS (
  SELECT b.site_id, b.bucket, b.fill_sum / b.readings AS fill_avg, b.fill_min, b.fill_last,
         coalesce(s.waste_type, 'unknown') AS waste_type,
         lag(b.fill_last) OVER (PARTITION BY b.site_id ORDER BY b.bucket) AS prev_last
  FROM bin_fill_hourly b JOIN sites s ON s.site_id = b.site_id
  WHERE s.kind = 'bin' AND {WASTE_TYPE}
    AND b.bucket > {{start}} AND b.bucket <= $__timeTo()
)"""

PREDICTED_FULL = f"""
WITH {_HOURLY.format(start=to_time() + " - interval '21 days'")},
emptied AS (
  SELECT site_id, max(bucket) FILTER (WHERE {bin_emptied()}) AS at FROM h GROUP BY site_id
), cycle AS (
  SELECT h.site_id,
         regr_slope(h.fill_avg, extract(epoch FROM h.bucket)::float8 / 86400) AS pct_per_day,
         (array_agg(h.fill_last ORDER BY h.bucket DESC))[1] AS fill_now,
         max(h.bucket) + interval '1 hour' AS seen, count(*) AS hours
  FROM h JOIN emptied e ON e.site_id = h.site_id
  WHERE e.at IS NULL OR h.bucket > e.at
  GROUP BY h.site_id
), predicted AS (
  SELECT c.*, s.name, coalesce(s.waste_type, 'unknown') AS waste_type, {DEFAULT_THRESHOLD} AS threshold_pct,
         c.seen + make_interval(secs => ({DEFAULT_THRESHOLD} - c.fill_now) / c.pct_per_day * 86400) AS predicted_full
  FROM cycle c JOIN sites s ON s.site_id = c.site_id
  WHERE c.hours >= 3 AND c.pct_per_day > 0.1 AND c.fill_now < {DEFAULT_THRESHOLD}
)
SELECT site_id AS bin, name, waste_type, round(fill_now::numeric, 1) AS fill_pct,
       round(pct_per_day::numeric, 1) AS pct_per_day, threshold_pct, predicted_full
FROM predicted
WHERE predicted_full <= {to_time()} + interval '7 days'
ORDER BY predicted_full, bin
"""

FILL_HISTORY = f"""
WITH b AS (
  {coarsest_rollup("bin_fill_hourly", "bin_fill_daily", "site_id, fill_sum, readings")}
)
SELECT $__timeGroupAlias(b.at, $__interval), coalesce(s.waste_type, 'unknown') AS metric,
       sum(b.fill_sum) / sum(b.readings) AS fill_pct
FROM b JOIN sites s ON s.site_id = b.site_id
WHERE s.kind = 'bin' AND {WASTE_TYPE}
GROUP BY 1, 2
ORDER BY 1, 2
"""

PICKUPS_PER_DAY = f"""
WITH {_HOURLY.format(start="$__timeFrom()::timestamptz - interval '1 day'")}
SELECT {local_day("bucket")} AS "time", waste_type AS metric, count(*) AS pickups
FROM h
WHERE $__timeFilter(bucket) AND {bin_emptied()}
GROUP BY 1, 2
ORDER BY 1, 2
"""

_SILENT = f"(l.time IS NULL OR l.time < {to_time()} - make_interval(secs => d.report_interval_s * 2.5))"
_LOW = "(p.battery_pct < $battery_low_pct OR p.battery_v < $battery_low_v)"
_LAST_READING = latest("bin_levels", "dev_eui", "d.dev_eui", "r.time")
_LAST_BATTERY = latest(
    "bin_levels",
    "dev_eui",
    "d.dev_eui",
    "r.battery_v, r.battery_pct",
    where="(r.battery_v IS NOT NULL OR r.battery_pct IS NOT NULL)",
)
ALERTS = f"""
SELECT s.site_id AS bin, s.name, d.dev_eui, d.codec, l.time AS last_reading,
       round(p.battery_v::numeric, 2) AS battery_v, round(p.battery_pct::numeric) AS battery_pct,
       concat_ws(', ', CASE WHEN {_LOW} THEN 'battery low' END, CASE WHEN {_SILENT} THEN 'silent' END) AS alert
FROM devices d JOIN sites s ON s.site_id = d.site_id
{_LAST_READING} l ON true
{_LAST_BATTERY} p ON true
WHERE s.kind = 'bin' AND {WASTE_TYPE} AND ({_LOW} OR {_SILENT})
ORDER BY l.time NULLS FIRST, s.site_id
"""

COUNT_ALERTS = f"""
SELECT count(*) AS sensor_alerts
FROM devices d JOIN sites s ON s.site_id = d.site_id
{_LAST_READING} l ON true
{_LAST_BATTERY} p ON true
WHERE s.kind = 'bin' AND {WASTE_TYPE} AND ({_LOW} OR {_SILENT})
"""


def build(*, tz: str, battery_low_pct: float, battery_low_v: float, drop_pct: float) -> dict[str, Any]:
    fill = override(
        "fill_pct",
        unit="percent",
        custom__cellOptions={"type": "color-background", "mode": "basic"},
        thresholds=FILL_STEPS,
        color={"mode": "thresholds"},
    )
    panels = [
        stat(
            "Full bins",
            COUNT_OVER,
            w=8,
            description="Bins whose latest reading is at or above their threshold (80 % where none is set).",
            color=thresholds((None, "green"), (1, "orange")),
        ),
        stat(
            "Average fill now",
            AVERAGE_FILL,
            unit="percent",
            w=8,
            description="Mean of every selected bin's latest fill level.",
            color=FILL_STEPS,
        ),
        stat(
            "Sensor alerts",
            COUNT_ALERTS,
            w=8,
            description="Bin sensors with a low battery or silent for longer than 2.5 report intervals.",
            color=thresholds((None, "green"), (1, "red")),
        ),
        geomap(
            "Bins by fill level",
            MAP,
            color_field="fill_pct",
            steps=FILL_STEPS,
            description="Every bin with a position, coloured by its latest fill level at the end of the range.",
        ),
        table(
            "Bins over threshold",
            OVER_THRESHOLD,
            h=12,
            overrides=[fill],
            description="Bins to empty now: latest fill at or above the bin's threshold.",
        ),
        table(
            "Predicted full within 7 days",
            PREDICTED_FULL,
            w=24,
            overrides=[fill],
            description=(
                "Bins below their threshold, with the time the threshold will be reached at the current fill "
                "rate. The rate is a least-squares fit of the hourly fill since the last emptying (a fall of "
                f"at least {drop_pct:g} points); the API's pickup plan uses a robust Theil-Sen fit of the raw "
                "readings, so the two can differ slightly."
            ),
        ),
        timeseries(
            "Fill history",
            FILL_HISTORY,
            unit="percent",
            interval="1h",
            description=(
                "Mean fill level of the readings per waste type, from the bins' hourly rollup (daily from an "
                "interval of a day)."
            ),
        ),
        timeseries(
            "Pickups per day",
            PICKUPS_PER_DAY,
            bars=True,
            stacked=True,
            description=(
                f"Emptyings detected from the fill level: a fall of at least {drop_pct:g} points below the "
                "previous hour that the hour's last reading confirms. Days in the reporting time zone."
            ),
        ),
        table(
            "Battery and silence alerts",
            ALERTS,
            w=24,
            overrides=[
                override(
                    "alert", custom__cellOptions={"type": "color-text"}, color={"mode": "fixed", "fixedColor": "red"}
                )
            ],
            description=(
                f"Bin sensors below {battery_low_pct:g} % or {battery_low_v:g} V (latest battery reading), or "
                "without a reading for longer than 2.5 times their report interval before the range end."
            ),
        ),
    ]
    variables = [
        query_variable(
            "waste_type",
            "Waste type",
            """
SELECT DISTINCT coalesce(waste_type, 'unknown') AS __text, coalesce(waste_type, 'unknown') AS __value
FROM sites WHERE kind = 'bin' ORDER BY 1""",
        ),
        constant("tz", tz, "reporting time zone (days and hours)"),
        constant("drop_pct", f"{drop_pct:g}", "a fall of this many fill points is an emptying"),
        constant("battery_low_pct", f"{battery_low_pct:g}", "battery % below which a sensor is flagged"),
        constant("battery_low_v", f"{battery_low_v:g}", "battery volts below which a sensor is flagged"),
    ]
    return dashboard(
        UID,
        "stadtpuls - Waste operations",
        tz=tz,
        panels=panels,
        variables=variables,
        description="Bin fill levels, bins to empty, predicted full bins, pickups and sensor health.",
    )
