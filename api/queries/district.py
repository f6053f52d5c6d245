"""The district: every tenant (town) with what the live summaries do not hold, in one statement for all towns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

__all__ = ["towns"]

# One row per tenant: its public face and its bins, counted over its threshold by each bin's newest reading in
# (since, now] (a bin without one is not counted as over).
_TOWNS = """
SELECT t.slug, t.name, t.brand_name, t.logo_url, t.colour,
       coalesce(b.bins, 0)::int AS bins, coalesce(b.over, 0)::int AS bins_over_threshold
FROM tenants t
LEFT JOIN (
    SELECT s.tenant, count(*) AS bins,
           count(*) FILTER (WHERE last.fill_pct >= coalesce(s.threshold_pct, %(threshold)s)) AS over
    FROM sites s
    LEFT JOIN LATERAL (
        SELECT l.fill_pct FROM bin_levels l
        WHERE l.site_id = s.site_id AND l.time > %(since)s AND l.time <= now()
        ORDER BY l.time DESC LIMIT 1
    ) last ON true
    WHERE s.kind = 'bin'
    GROUP BY s.tenant
) b ON b.tenant = t.slug
ORDER BY t.slug
"""


async def towns(conn: AsyncConnection, *, since: datetime, threshold: float) -> list[dict[str, Any]]:
    """Every tenant with its bins and how many are over their threshold (``threshold`` where a bin has none)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_TOWNS, {"since": since, "threshold": threshold})
    return await cur.fetchall()
