"""Buses dashboard: how full each line is now, and where and when people board."""

from __future__ import annotations

from typing import Any

from .fragments import coarsest_rollup, hour_pivot, local_day, to_time
from .panels import bargauge, constant, dashboard, override, query_variable, table, thresholds, timeseries

__all__ = ["UID", "build"]

UID = "stadtpuls-buses"

# Passengers on board: door-counter boardings minus alightings since local midnight (clipped at 0), or, for a
# vehicle with only a Wi-Fi/BLE counter, its latest head count of the last 10 minutes.
VEHICLES_CTE = f"""vehicles AS (
  SELECT v.site_id AS vehicle, v.name, v.capacity, l.site_id AS line_id, l.name AS line,
         doors.onboard, doors.last_count, heads.pax_count, stop.name AS last_stop
  FROM sites v
  JOIN sites l ON l.site_id = v.parent_id AND l.kind = 'line'
  LEFT JOIN LATERAL (
    SELECT CASE WHEN count(*) > 0 THEN greatest(sum(c.pax_in) - coalesce(sum(c.pax_out), 0), 0) END AS onboard,
           max(c.time) AS last_count
    FROM passenger_counts c
    WHERE c.site_id = v.site_id AND c.pax_in IS NOT NULL
      AND c.time > {local_day(to_time())} AND c.time <= $__timeTo()
  ) doors ON true
  LEFT JOIN LATERAL (
    SELECT c.pax_count FROM passenger_counts c
    WHERE c.site_id = v.site_id AND c.pax_count IS NOT NULL
      AND c.time > {to_time()} - interval '10 minutes' AND c.time <= $__timeTo()
    ORDER BY c.time DESC LIMIT 1
  ) heads ON true
  LEFT JOIN LATERAL (
    SELECT s.name FROM passenger_counts c JOIN sites s ON s.site_id = c.stop_id
    WHERE c.site_id = v.site_id AND c.time <= $__timeTo() AND c.stop_id IS NOT NULL
    ORDER BY c.time DESC LIMIT 1
  ) stop ON true
  WHERE v.kind = 'vehicle' AND l.site_id IN ($line)
)"""

LINES_NOW = f"""
WITH {VEHICLES_CTE}
SELECT line, sum(coalesce(onboard, pax_count, 0)) AS passengers, sum(capacity) AS capacity,
       round(100.0 * sum(coalesce(onboard, pax_count, 0)) / nullif(sum(capacity), 0), 1) AS occupancy_pct,
       count(*) AS vehicles
FROM vehicles
GROUP BY line_id, line
ORDER BY line
"""

VEHICLES_NOW = f"""
WITH {VEHICLES_CTE}
SELECT line, vehicle, name, coalesce(onboard, pax_count, 0) AS passengers, capacity,
       round(100.0 * coalesce(onboard, pax_count, 0) / nullif(capacity, 0), 1) AS occupancy_pct,
       last_stop, last_count
FROM vehicles
ORDER BY line, vehicle
"""

BOARDINGS = f"""
WITH p AS (
  {coarsest_rollup("line_load_hourly", "line_load_daily", "line_id, pax_in", where="line_id IN ($line)")}
)
SELECT $__timeGroupAlias(p.at, $__interval), l.name AS metric, sum(p.pax_in) AS boardings
FROM p JOIN sites l ON l.site_id = p.line_id
GROUP BY 1, 2
ORDER BY 1, 2
"""

BY_STOP = """
SELECT l.name AS line, s.seq, s.name AS stop, sum(p.pax_in) AS boardings, sum(p.pax_out) AS alightings,
       count(DISTINCT p.bucket) AS hours_served
FROM passengers_hourly p
JOIN sites l ON l.site_id = p.line_id
JOIN sites s ON s.site_id = p.stop_id
WHERE $__timeFilter(p.bucket) AND p.line_id IN ($line)
GROUP BY l.name, s.seq, s.site_id, s.name
ORDER BY l.name, s.seq, s.name
"""

STOP_HOURS = f"""
SELECT l.name || ' / ' || s.name AS stop,
       {hour_pivot("p.pax_in", "extract(hour FROM p.bucket AT TIME ZONE '$tz')", digits=0, agg="sum")}
FROM passengers_hourly p
JOIN sites l ON l.site_id = p.line_id
JOIN sites s ON s.site_id = p.stop_id
WHERE $__timeFilter(p.bucket) AND p.line_id IN ($line)
GROUP BY l.name, s.seq, s.site_id, s.name
ORDER BY l.name, s.seq, s.name
"""


def build(*, tz: str) -> dict[str, Any]:
    pct = thresholds((None, "green"), (60, "yellow"), (85, "red"))
    pct_cell = override(
        "occupancy_pct",
        unit="percent",
        thresholds=pct,
        color={"mode": "thresholds"},
        custom__cellOptions={"type": "color-background", "mode": "basic"},
    )
    heat_defaults = {
        "unit": "short",
        "min": 0,
        "decimals": 0,
        "color": {"mode": "continuous-BlPu"},
        "custom": {"align": "center", "cellOptions": {"type": "color-background", "mode": "gradient"}},
    }
    panels = [
        bargauge(
            "Occupancy per line now",
            LINES_NOW,
            field="occupancy_pct",
            unit="percent",
            maximum=100,
            steps=pct,
            w=10,
            description=(
                "Passengers on board as a share of the line's vehicle capacity. Door counters: boardings minus "
                "alightings since local midnight; vehicles with only a Wi-Fi/BLE counter: its latest count."
            ),
        ),
        table(
            "Vehicles now",
            VEHICLES_NOW,
            w=14,
            overrides=[pct_cell],
            description="Every vehicle of the selected lines with its passengers, capacity and last stop.",
        ),
        timeseries(
            "Boardings per hour by line",
            BOARDINGS,
            bars=True,
            stacked=True,
            interval="1h",
            w=24,
            description=(
                "Door-counter boardings per line, from the line's hourly rollup (daily from an interval of a day)."
            ),
        ),
        table(
            "Usage by stop",
            BY_STOP,
            w=10,
            h=10,
            description="Boardings and alightings per stop over the time range, in line order.",
        ),
        table(
            "Boardings by stop and hour of day",
            STOP_HOURS,
            w=14,
            h=10,
            defaults=heat_defaults,
            overrides=[override("stop", custom__cellOptions={"type": "auto"}, custom__align="left")],
            description="Total boardings per stop for each local hour of day over the time range.",
        ),
    ]
    variables = [
        query_variable(
            "line", "Line", "SELECT name AS __text, site_id AS __value FROM sites WHERE kind = 'line' ORDER BY name"
        ),
        constant("tz", tz, "reporting time zone (days and hours)"),
    ]
    return dashboard(
        UID,
        "stadtpuls - Buses",
        tz=tz,
        panels=panels,
        variables=variables,
        refresh="30s",
        description="Occupancy per line and vehicle now, boardings per hour, line and stop.",
    )
