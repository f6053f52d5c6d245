"""Tenants (towns): list, get, create, update."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["COLUMNS", "get_tenant", "insert_tenant", "list_tenants", "update_tenant"]

#: the columns the API writes (``db_role`` is the Grafana provisioning's)
COLUMNS = (
    "slug",
    "name",
    "timezone",
    "depots",
    "service_days",
    "pickup_start_hour",
    "brand_name",
    "logo_url",
    "colour",
)
_SELECT = sql.SQL("SELECT {}, db_role, created_at, updated_at FROM tenants").format(
    sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)
_LIST = _SELECT + sql.SQL(" ORDER BY slug")
_GET = _SELECT + sql.SQL(" WHERE slug = %s")


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (Jsonb(v) if k == "depots" and v is not None else v) for k, v in fields.items()}


async def list_tenants(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LIST)
    return await cur.fetchall()


async def get_tenant(conn: AsyncConnection, *, slug: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_GET, (slug,))
    return await cur.fetchone()


async def insert_tenant(conn: AsyncConnection, *, fields: dict[str, Any]) -> None:
    names = [c for c in COLUMNS if c in fields]
    query = sql.SQL("INSERT INTO tenants ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(sql.Placeholder(n) for n in names)
    )
    await conn.execute(query, _values({n: fields[n] for n in names}))


async def update_tenant(conn: AsyncConnection, *, slug: str, fields: dict[str, Any]) -> bool:
    names = [c for c in COLUMNS[1:] if c in fields]
    sets: list[sql.Composable] = [sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in names]
    sets.append(sql.SQL("updated_at = now()"))
    query = sql.SQL("UPDATE tenants SET {} WHERE slug = {}").format(sql.SQL(", ").join(sets), sql.Placeholder("_key"))
    cur = await conn.execute(query, {**_values({n: fields[n] for n in names}), "_key": slug})
    return cur.rowcount > 0
