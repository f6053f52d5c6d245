"""``stadtpuls keys create|list|revoke``: API keys in the database. A new key is printed once; only its salted
hash is stored. A key belongs to one tenant (``create --tenant SLUG``, default ``default``): an operator key sees
only its town; an admin key is the hub's, whatever its tenant."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from stadtpuls.schema import DEFAULT_TENANT

__all__ = ["create_key", "setup"]


def _out(text: str, *, err: bool = False) -> None:
    (sys.stderr if err else sys.stdout).write(text + "\n")


async def _create(url: str, role: str, name: str, tenant: str) -> str:
    import psycopg

    from stadtpuls.tenants import unknown_tenant

    from .auth import new_key
    from .queries.keys import insert_key

    key = new_key()
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        cur = await conn.execute("SELECT 1 FROM tenants WHERE slug = %s FOR KEY SHARE", (tenant,))
        if await cur.fetchone() is None:
            raise unknown_tenant(tenant)
        await insert_key(conn, key_id=key.key_id, name=name, role=role, key_hash=key.key_hash, tenant=tenant)
    return key.key


def create_key(url: str, *, role: str, name: str, tenant: str = DEFAULT_TENANT) -> str:
    """A new key of ``tenant`` in the database at ``url``; the key itself (shown once, only its hash is stored)."""
    return asyncio.run(_create(url, role, name, tenant))


async def _list(url: str, include_revoked: bool) -> list[dict[str, Any]]:
    import psycopg

    from .queries.keys import list_keys

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await list_keys(conn, include_revoked=include_revoked)


async def _revoke(url: str, key_id: str) -> bool:
    import psycopg

    from .queries.keys import revoke_key

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await revoke_key(conn, key_id=key_id) is not None


def _run(args: argparse.Namespace) -> int:
    import psycopg

    from stadtpuls.commands import database_url
    from stadtpuls.settings import load
    from stadtpuls.tenants import UnknownTenant

    url = args.database_url or database_url(load())
    try:
        if args.action == "create":
            key = create_key(url, role=args.role, name=args.name, tenant=args.tenant)
            _out(key)
            _out(
                f"created {args.role} key {args.name!r} of tenant {args.tenant!r}; it is shown only now, store it"
                " safely",
                err=True,
            )
        elif args.action == "list":
            rows = asyncio.run(_list(url, args.all))
            _out(f"{'KEY_ID':<14}{'ROLE':<10}{'TENANT':<16}{'CREATED':<22}{'REVOKED':<22}NAME")
            for r in rows:
                revoked = r["revoked_at"].strftime("%Y-%m-%d %H:%M") if r["revoked_at"] else "-"
                _out(
                    f"{r['key_id']:<14}{r['role']:<10}{r['tenant']:<16}{r['created_at'].strftime('%Y-%m-%d %H:%M'):<22}"
                    f"{revoked:<22}{r['name']}"
                )
        else:
            if not asyncio.run(_revoke(url, args.key_id)):
                _out(f"stadtpuls: no active key {args.key_id!r}", err=True)
                return 1
            _out(f"revoked {args.key_id}")
    except UnknownTenant as e:
        _out(f"stadtpuls keys: {e}", err=True)
        return 2
    except psycopg.OperationalError as e:
        _out(f"stadtpuls: cannot connect to the database: {e}", err=True)
        return 1
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="create a key and print it once")
    c.add_argument("--role", choices=["operator", "admin"], default="operator")
    c.add_argument("--name", required=True, help="who or what uses the key")
    c.add_argument(
        "--tenant", default=DEFAULT_TENANT, metavar="SLUG", help="the town an operator key sees (default: default)"
    )
    ls = sub.add_parser("list", help="list keys (ids, roles, names; never the keys)")
    ls.add_argument("--all", action="store_true", help="include revoked keys")
    r = sub.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    p.set_defaults(func=_run)
