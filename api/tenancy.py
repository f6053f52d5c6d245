"""Tenants (municipalities) in the API: which town a request is for, and what a key may see.

A town's pages and API live under its slug: ``/t/{slug}/parking`` and ``/api/v1/t/{slug}/parking/lots``. The
:class:`TenantPrefixMiddleware` takes the prefix off the path before routing (so every route serves every town
without being declared twice) and keeps the slug in ``request.state.tenant``. Without a prefix a request is for the
whole hub: a one-town install keeps its URLs, and on a hub of several towns the unprefixed public pages and feeds
show all of them.

Keys: an operator key belongs to one tenant and sees only that tenant's rows; a request of its key under another
town's prefix is answered 404 (so town B's ids do not leak). An admin key is the hub's: it sees every town, or the
one its path names. :func:`scope_for` gives a route the tenant its queries filter on (``None``: every
tenant); ``deps.PathTenant`` is the tenant a path names, a :class:`stadtpuls.tenants.Tenant` as :class:`TenantCache`
keeps them.
"""

from __future__ import annotations

import re
import time

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from starlette.types import ASGIApp, Receive, Scope, Send

from stadtpuls.schema import DEFAULT_TENANT
from stadtpuls.tenants import COLUMNS, SLUG_TEXT, Tenant, from_row

from .auth import Principal
from .problems import Problem

__all__ = [
    "Tenant",
    "TenantCache",
    "TenantPrefixMiddleware",
    "path_tenant",
    "scope_for",
]

_TOWNS = sql.SQL("SELECT {} FROM tenants ORDER BY slug").format(sql.SQL(", ").join(map(sql.Identifier, COLUMNS)))
_PREFIX = re.compile(rf"^(/api/v1)?/t/({SLUG_TEXT})(/.*)?$")


class TenantPrefixMiddleware:
    """``/t/{slug}/rest`` -> ``/rest`` and ``/api/v1/t/{slug}/rest`` -> ``/api/v1/rest``, with the slug kept in
    the scope's state (``request.state.tenant``); a request without a prefix has ``tenant`` None."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            state = scope.setdefault("state", {})
            state["tenant"] = None
            m = _PREFIX.match(scope["path"])
            if m:
                api, slug, rest = m.group(1) or "", m.group(2), m.group(3) or "/"
                path = api + rest
                state["tenant"] = slug
                scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


class TenantCache:
    """The ``tenants`` table, read at most every ``ttl`` seconds (a new town is served within that time)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._at = -1e9
        self._by_slug: dict[str, Tenant] = {}

    def fresh(self) -> dict[str, Tenant] | None:
        """The towns as last read while that is younger than ``ttl`` (no connection needed), else None."""
        return self._by_slug if time.monotonic() - self._at <= self.ttl else None

    async def all(self, conn: AsyncConnection) -> dict[str, Tenant]:
        if time.monotonic() - self._at > self.ttl:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(_TOWNS)
            self._by_slug = {r["slug"]: from_row(r) for r in await cur.fetchall()}
            self._at = time.monotonic()
        return self._by_slug

    def invalidate(self) -> None:
        self._at = -1e9


def path_tenant(tenant: Tenant | None) -> str | None:
    """The slug a public route filters on: the path's town, or None (every town)."""
    return tenant.slug if tenant is not None else None


def scope_for(principal: Principal, tenant: Tenant | None) -> str | None:
    """The tenant an authenticated route filters on (None: every tenant). An operator key sees its own town only;
    a path naming another town is answered 404, as if the route did not exist."""
    if principal.role == "admin":
        return tenant.slug if tenant is not None else None
    own = principal.tenant or DEFAULT_TENANT
    if tenant is not None and tenant.slug != own:
        raise Problem(404, "Not Found")
    return own
