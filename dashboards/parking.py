"""Parking dashboard: free spaces per lot now and over time, and when the lots are full (weekday x hour)."""

from __future__ import annotations

from typing import Any

from .fragments import hour_pivot, latest, lot_occupancy_ctes, to_time
from .panels import bargauge, constant, dashboard, override, query_variable, table, thresholds, timeseries

__all__ = ["UID", "build"]

UID = "stadtpuls-parking"

# A space whose sensor has been silent for longer than 2.5 heartbeats is unknown, not free (the API's rule).
_LAST_STATE = latest("parking_events", "dev_eui", "d.dev_eui", "r.occupied, r.time")
LOTS_NOW = f"""
WITH state AS (
  SELECT lot.site_id AS lot_id, lot.name AS lot, e.occupied, e.time,
         e.time >= {to_time()} - make_interval(secs => coalesce(d.report_interval_s, 3600) * 2.5) AS fresh
  FROM sites lot
  JOIN sites sp ON sp.parent_id = lot.site_id AND sp.kind = 'space'
  LEFT JOIN devices d ON d.site_id = sp.site_id
  {_LAST_STATE} e ON true
  WHERE lot.kind = 'lot' AND lot.site_id IN ($lot)
)
SELECT lot,
       count(*) FILTER (WHERE fresh AND NOT occupied) AS free,
       count(*) FILTER (WHERE fresh AND occupied) AS occupied,
       count(*) FILTER (WHERE fresh IS NOT TRUE) AS unknown,
       count(*) AS spaces,
       round(100.0 * count(*) FILTER (WHERE fresh AND occupied) / nullif(count(*) FILTER (WHERE fresh), 0), 1)
         AS occupancy_pct,
       max(time) AS last_update
FROM state
GROUP BY lot_id, lot
ORDER BY lot
"""

FREE_OVER_TIME = f"""
WITH {lot_occupancy_ctes()}
SELECT $__timeGroupAlias(bucket, $__interval), lot AS metric, avg(spaces - occupied) AS free
FROM occ
WHERE $__timeFilter(bucket)
GROUP BY 1, 2
ORDER BY 1, 2
"""

_LOCAL = "(bucket AT TIME ZONE '$tz')"
HEAT = f"""
WITH {lot_occupancy_ctes()},
shares AS (
  SELECT {_LOCAL} AS local, 100.0 * occupied / spaces AS pct FROM occ WHERE $__timeFilter(bucket) AND spaces > 0
)
SELECT to_char(local, 'ID Dy') AS weekday,
       {hour_pivot("pct", "extract(hour FROM local)")}
FROM shares
GROUP BY 1
ORDER BY 1
"""


def build(*, tz: str) -> dict[str, Any]:
    pct = thresholds((None, "green"), (70, "yellow"), (90, "red"))
    heat_defaults = {
        "unit": "percent",
        "min": 0,
        "max": 100,
        "decimals": 0,
        "color": {"mode": "continuous-GrYlRd"},
        "custom": {"align": "center", "cellOptions": {"type": "color-background", "mode": "gradient"}},
    }
    panels = [
        bargauge(
            "Free spaces now",
            LOTS_NOW,
            field="free",
            w=10,
            h=9,
            steps=thresholds((None, "red"), (1, "orange"), (5, "green")),
            description=(
                "Free spaces per lot at the end of the range. Spaces whose sensor has been silent for longer "
                "than 2.5 heartbeats count as unknown, not free."
            ),
        ),
        table(
            "Lots now",
            LOTS_NOW,
            w=14,
            h=9,
            overrides=[
                override(
                    "occupancy_pct",
                    unit="percent",
                    thresholds=pct,
                    color={"mode": "thresholds"},
                    custom__cellOptions={"type": "color-background", "mode": "basic"},
                )
            ],
            description="Free, occupied and unknown spaces per lot, with the time of the latest sensor report.",
        ),
        timeseries(
            "Free spaces over time",
            FREE_OVER_TIME,
            interval="1h",
            w=24,
            description=(
                "Free spaces per lot and hour (sensored spaces minus the hour's time-weighted mean of occupied "
                "ones), from the hourly rollup. A space keeps its last reported state until it reports again or "
                "its sensor goes silent."
            ),
        ),
        table(
            "Occupancy by weekday and hour",
            HEAT,
            w=24,
            h=10,
            defaults=heat_defaults,
            overrides=[override("weekday", custom__cellOptions={"type": "auto"}, custom__align="left")],
            description=(
                "Average share of occupied spaces of the selected lots for each weekday and local hour of day "
                "over the time range (a heat map: green = empty, red = full)."
            ),
        ),
    ]
    variables = [
        query_variable(
            "lot", "Lot", "SELECT name AS __text, site_id AS __value FROM sites WHERE kind = 'lot' ORDER BY name"
        ),
        constant("tz", tz, "reporting time zone (days and hours)"),
    ]
    return dashboard(
        UID,
        "stadtpuls - Parking",
        tz=tz,
        panels=panels,
        variables=variables,
        refresh="30s",
        description="Free spaces per lot now and over time, occupancy by weekday and hour.",
    )
