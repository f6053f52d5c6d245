"""API keys (``api_keys``): only hashes are stored."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from stadtpuls.schema import DEFAULT_TENANT

__all__ = ["active_key", "insert_key", "list_keys", "revoke_key", "tenant_exists"]


async def active_key(conn: AsyncConnection, *, key_id: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT key_id, name, role, key_hash, tenant FROM api_keys WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
    )
    return await cur.fetchone()


async def insert_key(
    conn: AsyncConnection, *, key_id: str, name: str, role: str, key_hash: str, tenant: str = DEFAULT_TENANT
) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """INSERT INTO api_keys (key_id, name, role, key_hash, tenant) VALUES (%s, %s, %s, %s, %s)
           RETURNING key_id, name, role, tenant, created_at, revoked_at""",
        (key_id, name, role, key_hash, tenant),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_keys(
    conn: AsyncConnection, *, include_revoked: bool = True, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Keys, of ``tenant`` only unless it is None."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT key_id, name, role, tenant, created_at, revoked_at FROM api_keys
           WHERE (%(revoked)s OR revoked_at IS NULL) AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
           ORDER BY created_at, key_id""",
        {"revoked": include_revoked, "tenant": tenant},
    )
    return await cur.fetchall()


async def revoke_key(conn: AsyncConnection, *, key_id: str, tenant: str | None = None) -> dict[str, Any] | None:
    """Marks the key revoked; ``None`` when no active key (of ``tenant``, unless it is None) has that id."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """UPDATE api_keys SET revoked_at = now()
           WHERE key_id = %(key)s AND revoked_at IS NULL AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
           RETURNING key_id, name, role, tenant, created_at, revoked_at""",
        {"key": key_id, "tenant": tenant},
    )
    return await cur.fetchone()


async def tenant_exists(conn: AsyncConnection, *, slug: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM tenants WHERE slug = %s", (slug,))
    return await cur.fetchone() is not None
