"""Tenants (towns): list, get, create, update; the statements are the core's (:mod:`stadtpuls.tenants`), run on
the API's asynchronous connection."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from stadtpuls.tenants import COLUMNS, FIELDS, insert_statement, update_statement

__all__ = ["get_tenant", "insert_tenant", "list_tenants", "update_tenant"]

_SELECT = sql.SQL("SELECT {}, db_role, created_at, updated_at FROM tenants").format(
    sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)
_LIST = _SELECT + sql.SQL(" ORDER BY slug")
_GET = _SELECT + sql.SQL(" WHERE slug = %s")


async def list_tenants(conn: AsyncConnection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_LIST)
    return await cur.fetchall()


async def get_tenant(conn: AsyncConnection, *, slug: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_GET, (slug,))
    return await cur.fetchone()


async def insert_tenant(conn: AsyncConnection, *, fields: dict[str, Any]) -> None:
    """``fields``: the town's ``slug`` and its checked values (the API's models)."""
    await conn.execute(*insert_statement(fields["slug"], {f: fields[f] for f in FIELDS if f in fields}))


async def update_tenant(conn: AsyncConnection, *, slug: str, fields: dict[str, Any]) -> bool:
    """Whether town ``slug`` exists (and was changed)."""
    cur = await conn.execute(*update_statement(slug, {f: fields[f] for f in FIELDS if f in fields}))
    return cur.rowcount > 0
