"""Health and metrics figures read from the database."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection

__all__ = ["ingest_lag", "schema_mode", "stats"]


async def schema_mode(conn: AsyncConnection) -> str:
    """``timescaledb`` or ``postgresql`` as chosen by ``stadtpuls migrate`` (``unknown`` before migrating)."""
    try:
        cur = await conn.execute("SELECT mode FROM schema_migrations ORDER BY version DESC LIMIT 1")
    except psycopg.errors.UndefinedTable:
        return "unknown"
    row = await cur.fetchone()
    return str(row[0]) if row else "unknown"


async def ingest_lag(conn: AsyncConnection) -> tuple[Any, float | None]:
    """``(newest uplink received_at, seconds since)``; ``(None, None)`` when nothing was received yet."""
    cur = await conn.execute(
        """SELECT received_at, extract(epoch FROM now() - received_at)::float8
           FROM uplinks ORDER BY received_at DESC LIMIT 1"""
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row else (None, None)


async def stats(conn: AsyncConnection) -> dict[str, Any]:
    cur = await conn.execute(
        """SELECT
             (SELECT count(*) FROM devices),
             (SELECT count(*) FROM devices d WHERE NOT EXISTS (
                  SELECT 1 FROM uplinks u WHERE u.dev_eui = d.dev_eui
                  AND u.time > now() - make_interval(secs => 2.5 * d.report_interval_s))),
             (SELECT count(*) FROM uplinks WHERE time > now() - interval '1 hour'),
             (SELECT count(*) FROM (
                  SELECT DISTINCT ON (b.site_id) b.fill_pct, s.threshold_pct
                  FROM bin_levels b JOIN sites s ON s.site_id = b.site_id
                  WHERE b.time > now() - interval '7 days'
                  ORDER BY b.site_id, b.time DESC) last
              WHERE last.fill_pct >= coalesce(last.threshold_pct, 80))"""
    )
    row = await cur.fetchone()
    assert row is not None
    _, lag = await ingest_lag(conn)
    cur = await conn.execute(
        "SELECT stage, count(*) FROM dead_letters WHERE received_at > now() - interval '1 hour' GROUP BY stage"
    )
    dead = {str(stage): int(n) for stage, n in await cur.fetchall()}
    return {
        "devices": int(row[0]),
        "devices_silent": int(row[1]),
        "uplinks_last_hour": int(row[2]),
        "bins_over_threshold": int(row[3]),
        "ingest_lag_s": lag,
        "dead_letters_last_hour": dead,
    }
