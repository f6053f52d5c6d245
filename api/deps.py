"""Dependencies as ``Annotated`` aliases: ``ConnDep`` (a pooled connection), ``CtxDep`` (the app context),
``OperatorKey`` / ``AdminKey`` (the caller's principal, 401 without a valid key, 403 without the role),
and ``rate_limited`` for public routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from stadtpuls.settings import Settings

from .auth import KeyRing, Principal, Role
from .metrics import ApiMetrics
from .problems import Problem
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from .live import LiveHub

__all__ = ["AdminKey", "AppContext", "ConnDep", "CtxDep", "OperatorKey", "api_key_header", "rate_limited"]


@dataclass
class AppContext:
    settings: Settings
    pool: AsyncConnectionPool
    keys: KeyRing
    limiter: RateLimiter
    hub: LiveHub
    metrics: ApiMetrics
    mode: str = "unknown"  # timescaledb | postgresql, read from schema_migrations at start


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


CtxDep = Annotated[AppContext, Depends(get_ctx)]


async def get_conn(ctx: CtxDep) -> AsyncIterator[AsyncConnection]:
    async with ctx.pool.connection() as conn:
        yield conn


ConnDep = Annotated[AsyncConnection, Depends(get_conn)]

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="operator or admin key (`stadtpuls keys create`)"
)


async def _principal(ctx: AppContext, key: str | None, role: Role) -> Principal:
    if not key:
        raise Problem(
            401, "this route needs an API key in the X-API-Key header", headers={"WWW-Authenticate": "ApiKey"}
        )
    if len(key) > 200:
        raise Problem(401, "the API key is not valid", headers={"WWW-Authenticate": "ApiKey"})
    async with ctx.pool.connection() as conn:
        principal = await ctx.keys.authenticate(conn, key)
    if principal is None:
        raise Problem(401, "the API key is not valid", headers={"WWW-Authenticate": "ApiKey"})
    if not principal.allows(role):
        raise Problem(403, f"this route needs the {role} role; the key has the {principal.role} role")
    return principal


async def require_operator(ctx: CtxDep, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
    return await _principal(ctx, key, "operator")


async def require_admin(ctx: CtxDep, key: Annotated[str | None, Security(api_key_header)]) -> Principal:
    return await _principal(ctx, key, "admin")


OperatorKey = Annotated[Principal, Depends(require_operator)]
AdminKey = Annotated[Principal, Depends(require_admin)]


def rate_limited(request: Request, ctx: CtxDep) -> None:
    """Public routes: at most ``rate_limit_per_minute`` requests per client address (429 beyond)."""
    client = request.client.host if request.client else "unknown"
    wait = ctx.limiter.check(client)
    if wait > 0:
        raise Problem(
            429,
            f"rate limit of {ctx.limiter.per_minute} requests per minute exceeded",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
