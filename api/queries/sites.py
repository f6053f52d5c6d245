"""Sites: list, get, create, update, delete; each filtered on a tenant (``None``: every tenant)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from stadtpuls.fleet import SITE_COLUMNS
from stadtpuls.schema import assignments, insert_row

__all__ = ["children", "count_sites", "delete_site", "get_site", "insert_site", "list_sites", "update_site"]

COLUMNS = SITE_COLUMNS  # the registry file's site columns, in the same order
_SELECT = sql.SQL("SELECT {}, s.tenant, public_id, created_at, updated_at FROM sites s").format(
    sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
)
_FILTER = """
WHERE (%(tenant)s::text IS NULL OR s.tenant = %(tenant)s::text)
  AND (%(kind)s::text IS NULL OR s.kind = %(kind)s::text)
  AND (%(parent)s::text IS NULL OR s.parent_id = %(parent)s::text)
  AND (%(q)s::text IS NULL OR s.name ILIKE %(q)s::text OR s.site_id ILIKE %(q)s::text)"""

_LIST = _SELECT + sql.SQL(_FILTER + " ORDER BY s.site_id LIMIT %(limit)s OFFSET %(offset)s")
_GET = _SELECT + sql.SQL(" WHERE s.site_id = %(site)s AND (%(tenant)s::text IS NULL OR s.tenant = %(tenant)s::text)")


def _like(text: str | None) -> str | None:
    if text is None:
        return None
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (Jsonb(v) if k == "params" else v) for k, v in fields.items()}


async def list_sites(
    conn: AsyncConnection,
    *,
    tenant: str | None,
    kind: str | None,
    parent_id: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        _LIST,
        {"tenant": tenant, "kind": kind, "parent": parent_id, "q": _like(q), "limit": limit, "offset": offset},
    )
    return await cur.fetchall()


async def count_sites(
    conn: AsyncConnection, *, tenant: str | None, kind: str | None, parent_id: str | None, q: str | None
) -> int:
    cur = await conn.execute(
        "SELECT count(*) FROM sites s" + _FILTER, {"tenant": tenant, "kind": kind, "parent": parent_id, "q": _like(q)}
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def get_site(conn: AsyncConnection, *, site_id: str, tenant: str | None = None) -> dict[str, Any] | None:
    """The site, if it is in ``tenant`` (``None``: in any tenant)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_GET, {"site": site_id, "tenant": tenant})
    return await cur.fetchone()


async def children(conn: AsyncConnection, *, site_id: str) -> int:
    cur = await conn.execute("SELECT count(*) FROM sites WHERE parent_id = %s", (site_id,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def insert_site(conn: AsyncConnection, *, fields: dict[str, Any], tenant: str) -> None:
    names = [c for c in COLUMNS if c in fields and c != "tenant"]
    await conn.execute(*insert_row("sites", {**_values({n: fields[n] for n in names}), "tenant": tenant}))


async def update_site(conn: AsyncConnection, *, site_id: str, fields: dict[str, Any]) -> bool:
    """Changes the fields sent (never the tenant: the route checked the site is the caller's)."""
    names = [c for c in COLUMNS[1:] if c in fields and c != "tenant"]
    query = sql.SQL("UPDATE sites SET {} WHERE site_id = %(_key)s").format(assignments(names))
    cur = await conn.execute(query, {**_values({n: fields[n] for n in names}), "_key": site_id})
    return cur.rowcount > 0


async def delete_site(conn: AsyncConnection, *, site_id: str) -> bool:
    cur = await conn.execute("DELETE FROM sites WHERE site_id = %s", (site_id,))
    return cur.rowcount > 0
