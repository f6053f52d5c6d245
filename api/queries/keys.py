"""API keys (``api_keys``): only hashes are stored."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

__all__ = ["active_key", "insert_key", "list_keys", "revoke_key"]


async def active_key(conn: AsyncConnection, *, key_id: str) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT key_id, name, role, key_hash, tenant FROM api_keys WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
    )
    return await cur.fetchone()


async def insert_key(conn: AsyncConnection, *, key_id: str, name: str, role: str, key_hash: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """INSERT INTO api_keys (key_id, name, role, key_hash) VALUES (%s, %s, %s, %s)
           RETURNING key_id, name, role, created_at, revoked_at""",
        (key_id, name, role, key_hash),
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_keys(conn: AsyncConnection, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT key_id, name, role, created_at, revoked_at FROM api_keys
           WHERE %s OR revoked_at IS NULL ORDER BY created_at, key_id""",
        (include_revoked,),
    )
    return await cur.fetchall()


async def revoke_key(conn: AsyncConnection, *, key_id: str) -> dict[str, Any] | None:
    """Marks the key revoked; ``None`` when no active key has that id."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL
           RETURNING key_id, name, role, created_at, revoked_at""",
        (key_id,),
    )
    return await cur.fetchone()
