"""Devices: list, get, create, update, delete; a device's last uplinks and radio health. Lists and lookups
filter on a tenant (``None``: every tenant)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stadtpuls.fleet import DEVICE_COLUMNS
from stadtpuls.schema import assignments, insert_row

__all__ = [
    "count_devices",
    "delete_device",
    "get_device",
    "insert_device",
    "list_devices",
    "radio",
    "update_device",
    "uplinks",
]

COLUMNS = DEVICE_COLUMNS
_SELECT = """SELECT d.dev_eui, d.codec, d.name, d.site_id, d.lns_device_id, d.lns_application_id, d.lat, d.lon,
       d.report_interval_s,
       d.params, d.tenant, d.created_at, d.updated_at,
       (SELECT max(u.time) FROM uplinks u WHERE u.dev_eui = d.dev_eui) AS last_seen
FROM devices d"""
_FILTER = """
WHERE (%(tenant)s::text IS NULL OR d.tenant = %(tenant)s::text)
  AND (%(site)s::text IS NULL OR d.site_id = %(site)s::text)
  AND (%(codec)s::text IS NULL OR d.codec = %(codec)s::text)
  AND (%(q)s::text IS NULL OR d.name ILIKE %(q)s::text OR d.dev_eui LIKE lower(%(q)s::text)
       OR d.lns_device_id ILIKE %(q)s::text)"""


def _like(text: str | None) -> str | None:
    if text is None:
        return None
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (Jsonb(v) if k == "params" else v) for k, v in fields.items()}


async def list_devices(
    conn: AsyncConnection,
    *,
    tenant: str | None,
    site_id: str | None,
    codec: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _SELECT + _FILTER + " ORDER BY d.dev_eui LIMIT %(limit)s OFFSET %(offset)s",
        {"tenant": tenant, "site": site_id, "codec": codec, "q": _like(q), "limit": limit, "offset": offset},
    )
    return await cur.fetchall()


async def count_devices(
    conn: AsyncConnection, *, tenant: str | None, site_id: str | None, codec: str | None, q: str | None
) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM devices d" + _FILTER, {"tenant": tenant, "site": site_id, "codec": codec, "q": _like(q)}
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def get_device(conn: AsyncConnection, *, dev_eui: str, tenant: str | None = None) -> dict[str, Any] | None:
    """The device, if it is in ``tenant`` (``None``: in any tenant)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _SELECT + " WHERE d.dev_eui = %(dev)s AND (%(tenant)s::text IS NULL OR d.tenant = %(tenant)s::text)",
        {"dev": dev_eui, "tenant": tenant},
    )
    return await cur.fetchone()


async def insert_device(conn: AsyncConnection, *, fields: dict[str, Any], tenant: str) -> None:
    names = [c for c in COLUMNS if c in fields and c != "tenant"]
    await conn.execute(*insert_row("devices", {**_values({n: fields[n] for n in names}), "tenant": tenant}))


async def update_device(conn: AsyncConnection, *, dev_eui: str, fields: dict[str, Any], tenant: str | None) -> bool:
    """Changes the fields sent (never the tenant) of the device if it is in ``tenant``; False when it is not."""
    names = [c for c in COLUMNS[1:] if c in fields and c != "tenant"]
    query = sql.SQL(
        "UPDATE devices SET {} WHERE dev_eui = %(_key)s AND (%(_tenant)s::text IS NULL OR tenant = %(_tenant)s::text)"
    ).format(assignments(names))
    cur = await conn.execute(query, {**_values({n: fields[n] for n in names}), "_key": dev_eui, "_tenant": tenant})
    return cur.rowcount > 0


async def delete_device(conn: AsyncConnection, *, dev_eui: str, tenant: str | None) -> bool:
    cur = await conn.execute(
        "DELETE FROM devices WHERE dev_eui = %(dev)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)",
        {"dev": dev_eui, "tenant": tenant},
    )
    return cur.rowcount > 0


async def uplinks(conn: AsyncConnection, *, dev_eui: str, limit: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT time, f_cnt, f_port, encode(payload, 'hex') AS payload_hex, rssi, snr, dr, sf, frequency,
                  gateways, gateway_id, lns, received_at
           FROM uplinks WHERE dev_eui = %s ORDER BY time DESC LIMIT %s""",
        (dev_eui, limit),
    )
    return await cur.fetchall()


async def open_gaps(conn: AsyncConnection, *, dev_eui: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The device's open frame-counter gaps, newest first, and the counters closed in the last 24 hours."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT time, f_cnt_from, f_cnt_to, missing, detected_at FROM fcnt_gaps
           WHERE dev_eui = %s ORDER BY time DESC, f_cnt_from DESC LIMIT %s""",
        (dev_eui, limit),
    )
    rows = await cur.fetchall()
    await cur.execute(
        """SELECT count(*)::int AS n FROM fcnt_gaps_closed
           WHERE dev_eui = %s AND closed_at > now() - interval '24 hours'""",
        (dev_eui,),
    )
    closed = await cur.fetchone()
    return rows, int(closed["n"]) if closed else 0


async def radio(conn: AsyncConnection, *, dev_eui: str) -> dict[str, Any]:
    """Last 24 hours from ``uplinks_hourly`` (whole hours, so up to 25 hours), gaps and last seen."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT coalesce(sum(uplinks), 0)::int AS uplinks_24h,
                  (sum(rssi_avg * uplinks) / nullif(sum(uplinks), 0))::float8 AS rssi_avg,
                  min(rssi_min)::float8 AS rssi_min,
                  (sum(snr_avg * uplinks) / nullif(sum(uplinks), 0))::float8 AS snr_avg,
                  (SELECT max(time) FROM uplinks WHERE dev_eui = %(dev)s) AS last_seen,
                  (SELECT coalesce(sum(missing), 0)::int FROM fcnt_gaps
                   WHERE dev_eui = %(dev)s AND time > now() - interval '24 hours') AS missing_f_cnt_24h
           FROM uplinks_hourly
           WHERE dev_eui = %(dev)s AND bucket > now() - interval '24 hours' - interval '1 hour'""",
        {"dev": dev_eui},
    )
    row = await cur.fetchone()
    assert row is not None
    return row
