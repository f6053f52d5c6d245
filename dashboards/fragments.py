"""SQL fragments shared by several dashboards.

They are written for Grafana's PostgreSQL datasource: ``$__timeFrom()`` / ``$__timeTo()`` are quoted UTC
timestamps, ``$tz`` is the reporting time zone (a dashboard constant) and multi-value variables expand to quoted
lists for ``IN (...)``. Everything runs unchanged on TimescaleDB (continuous aggregates) and plain PostgreSQL
(views of the same names and columns).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_THRESHOLD",
    "bin_emptied",
    "coarsest_rollup",
    "hour_pivot",
    "latest",
    "local_day",
    "lot_occupancy_ctes",
    "to_time",
]

DEFAULT_THRESHOLD = "coalesce(s.threshold_pct, 80)"  # the planner's default threshold for bins without one


def to_time() -> str:
    """The end of the dashboard's time range as a timestamptz expression."""
    return "$__timeTo()::timestamptz"


def local_day(expr: str) -> str:
    """Start of the local (``$tz``) day of a timestamptz, as a timestamptz."""
    return f"(date_trunc('day', {expr} AT TIME ZONE '$tz') AT TIME ZONE '$tz')"


def latest(table: str, key: str, value: str, columns: str, *, where: str = "") -> str:
    """A ``LEFT JOIN LATERAL`` picking ``table``'s newest row for ``key = value`` at or before the range end."""
    extra = f" AND {where}" if where else ""
    return (
        f"LEFT JOIN LATERAL (\n"
        f"  SELECT {columns} FROM {table} r\n"
        f"  WHERE r.{key} = {value} AND r.time <= $__timeTo(){extra}\n"
        f"  ORDER BY r.time DESC LIMIT 1\n"
        f")"
    )


def coarsest_rollup(hourly: str, daily: str, columns: str, *, where: str = "true") -> str:
    """Rows ``(at, columns...)`` of the coarsest rollup the panel's interval allows: ``daily`` (local days of the
    reporting time zone) from an interval of a day, else ``hourly``. A day's ``at`` is its noon, so it falls on its
    own date in ``$__timeGroup`` whatever the zone. The other branch's condition is a false constant, so PostgreSQL
    never reads its table."""
    return (
        f"SELECT bucket + interval '12 hours' AS at, {columns} FROM {daily}\n"
        f"  WHERE $__interval_ms >= 86400000 AND bucket > $__timeFrom()::timestamptz - interval '1 day'\n"
        f"    AND bucket <= $__timeTo() AND {where}\n"
        f"  UNION ALL\n"
        f"  SELECT bucket, {columns} FROM {hourly}\n"
        f"  WHERE $__interval_ms < 86400000 AND $__timeFilter(bucket) AND {where}"
    )


def bin_emptied(prev: str = "prev_last") -> str:
    """Condition on a ``bin_fill_hourly`` row: the bin was emptied in this hour.

    A fall of at least ``$drop_pct`` points below the previous hour's last reading that the hour's own last
    reading confirms (one low echo followed by a full reading is not a pickup) - the planner's rule, per hour.
    """
    return f"{prev} - fill_min >= $drop_pct AND fill_last <= {prev} - $drop_pct"


def lot_occupancy_ctes() -> str:
    """CTEs ending in ``occ(lot_id, lot, bucket, spaces, occupied)``: occupied spaces per lot and local hour.

    ``occupied`` is the hour's time-weighted mean (space-seconds occupied / 3600) from ``parking_lot_hourly``, the
    rollup the ingest keeps current (migration 0008): an hour with no row had no space known, so nothing occupied.
    """
    return """spaces AS (
  SELECT sp.parent_id AS lot_id, count(*) AS spaces
  FROM sites sp
  WHERE sp.kind = 'space' AND sp.parent_id IN ($lot)
  GROUP BY sp.parent_id
), occ AS (
  SELECT l.site_id AS lot_id, l.name AS lot, h.bucket, s.spaces, h.occupied_s / 3600.0 AS occupied
  FROM parking_lot_hourly h
  JOIN sites l ON l.site_id = h.lot_id
  JOIN spaces s ON s.lot_id = h.lot_id
  WHERE h.lot_id IN ($lot) AND h.bucket >= $__timeFrom()::timestamptz - interval '1 hour' AND h.bucket <= $__timeTo()
)"""


def hour_pivot(value: str, hour: str, *, digits: int = 1, agg: str = "avg") -> str:
    """24 columns ``"00"`` .. ``"23"``: ``agg(value)`` of the rows whose local hour of day ``hour`` is h."""
    return ",\n       ".join(
        f'round(({agg}({value}) FILTER (WHERE {hour} = {h}))::numeric, {digits}) AS "{h:02d}"' for h in range(24)
    )
