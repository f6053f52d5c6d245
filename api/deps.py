"""Dependencies as ``Annotated`` aliases: ``ConnDep`` (a pooled connection), ``CtxDep`` (the app context),
``OperatorKey`` / ``AdminKey`` (the caller's principal, 401 without a valid key, 403 without the role),
``PathTenant`` (the town a ``/t/{slug}`` prefix names), ``OperatorScope`` / ``AdminScope`` (the principal and the
tenant an authenticated route filters on) and ``rate_limited`` for public routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from starlette.types import Scope

from stadtpuls.logs import get_logger
from stadtpuls.schema import DEFAULT_TENANT
from stadtpuls.settings import Settings

from .answers import AnswerCache
from .auth import KeyRing, Principal, Role
from .metrics import ApiMetrics
from .problems import Problem, invalid_body
from .ratelimit import RateLimiter
from .sse import StreamSlots
from .tenancy import Tenant, TenantCache, scope_for

if TYPE_CHECKING:
    from .live import LiveHub

__all__ = [
    "Access",
    "AdminKey",
    "AdminScope",
    "AppContext",
    "ConnDep",
    "CtxDep",
    "OperatorKey",
    "OperatorScope",
    "PathTenant",
    "api_key_header",
    "authenticate",
    "client_address",
    "metrics_access",
    "rate_limited",
    "sees_unowned",
]
log = get_logger("stadtpuls.api.auth")


@dataclass
class AppContext:
    settings: Settings
    pool: AsyncConnectionPool
    keys: KeyRing
    limiter: RateLimiter
    hub: LiveHub
    metrics: ApiMetrics
    mode: str = "unknown"  # timescaledb | postgresql, read from schema_migrations at start
    key_failures: RateLimiter = field(default_factory=lambda: RateLimiter(0))  # wrong keys per client
    streams: StreamSlots = field(default_factory=lambda: StreamSlots(500, 16))
    tenants: TenantCache = field(default_factory=TenantCache)
    answers: dict[str, AnswerCache[Any]] = field(default_factory=dict)  # per route family, made on first use

    def answer_cache(self, name: str, size: int) -> AnswerCache[Any]:
        """The app's answers of the routes ``name`` (at most ``size`` of them), kept for ``api_cache_ttl`` seconds."""
        cache = self.answers.get(name)
        if cache is None:
            cache = self.answers[name] = AnswerCache(self.settings.api_cache_ttl, size)
        return cache


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


def client_address(scope: Scope) -> str:
    """The client's address: the peer, or behind a trusted proxy the address it forwarded (see ``edge``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def authenticate(ctx: AppContext, client: str, key: str | None, role: Role) -> Principal:
    """The principal of ``key`` if it has ``role``; else 401 or 403. A client with ``key_failures_per_minute``
    wrong keys in the last minute gets 429 without its key being looked at."""
    wait = ctx.key_failures.wait(client)
    if wait > 0:
        raise Problem(
            429, "too many wrong API keys from this address; try again later", headers={"Retry-After": _secs(wait)}
        )
    if not key:
        raise Problem(
            401, "this route needs an API key in the X-API-Key header", headers={"WWW-Authenticate": "ApiKey"}
        )
    principal = None
    if len(key) <= 200:
        async with ctx.pool.connection() as conn:
            principal = await ctx.keys.authenticate(conn, key)
    if principal is None:
        ctx.key_failures.check(client)
        log.warning("wrong API key", extra={"client": client})
        raise Problem(401, "the API key is not valid", headers={"WWW-Authenticate": "ApiKey"})
    if not principal.allows(role):
        raise Problem(403, f"this route needs the {role} role; the key has the {principal.role} role")
    return principal


async def _principal(request: Request, ctx: AppContext, key: str | None, role: Role) -> Principal:
    checked = getattr(request.state, "principal", None)  # by edge.KeyFirstMiddleware, before the body was read
    if isinstance(checked, Principal) and checked.allows(role):
        return checked
    return await authenticate(ctx, client_address(request.scope), key, role)


async def require_operator(
    request: Request, ctx: CtxDep, key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    return await _principal(request, ctx, key, "operator")


async def require_admin(
    request: Request, ctx: CtxDep, key: Annotated[str | None, Security(api_key_header)]
) -> Principal:
    return await _principal(request, ctx, key, "admin")


OperatorKey = Annotated[Principal, Depends(require_operator)]
AdminKey = Annotated[Principal, Depends(require_admin)]


def _secs(wait: float) -> str:
    return str(max(1, round(wait)))


def rate_limited(request: Request, ctx: CtxDep) -> None:
    """Public routes: at most ``rate_limit_per_minute`` requests per client address (429 beyond)."""
    wait = ctx.limiter.check(client_address(request.scope))
    if wait > 0:
        raise Problem(
            429,
            f"rate limit of {ctx.limiter.per_minute} requests per minute exceeded",
            headers={"Retry-After": _secs(wait)},
        )


async def metrics_access(request: Request, ctx: CtxDep, key: Annotated[str | None, Security(api_key_header)]) -> None:
    """``/metrics``: with ``api_metrics_port`` set, only on that (internal) port and without key (404 elsewhere);
    otherwise on the API port with an operator key."""
    port = ctx.settings.api_metrics_port
    if port:
        server = request.scope.get("server")
        if not server or server[1] != port:
            raise Problem(404, "Not Found")
        return
    await _principal(request, ctx, key, "operator")


async def tenant_of_request(request: Request, ctx: CtxDep) -> Tenant | None:
    """The tenant the request's path names (404 for an unknown slug), or None without a prefix."""
    slug = getattr(request.state, "tenant", None)
    if slug is None:
        return None
    towns = ctx.tenants.fresh()  # most requests: no pool connection borrowed for the lookup
    if towns is None:
        async with ctx.pool.connection() as conn:
            towns = await ctx.tenants.all(conn)
    tenant = towns.get(slug)
    if tenant is None:
        raise Problem(404, f"no town {slug!r} on this hub")
    return tenant


PathTenant = Annotated[Tenant | None, Depends(tenant_of_request)]


@dataclass(frozen=True)
class Access:
    """Who calls an authenticated route and which rows it sees: ``tenant`` is the slug its queries filter on
    (:func:`~.tenancy.scope_for`; None: every town, a hub admin key without a town prefix)."""

    principal: Principal
    tenant: str | None

    @property
    def is_admin(self) -> bool:
        return self.principal.role == "admin"

    def owner(self, requested: str | None = None) -> str:
        """The tenant a new row goes to: the scope's; a hub admin without a prefix may name one (default: the
        default tenant). An operator naming another town than its own gets 422."""
        if self.tenant is None:
            return requested or DEFAULT_TENANT
        if requested is not None and requested != self.tenant:
            raise invalid_body("tenant", f"this key creates rows in town {self.tenant!r} only", "another town")
        return self.tenant


def operator_scope(principal: OperatorKey, tenant: PathTenant) -> Access:
    return Access(principal, scope_for(principal, tenant))


def admin_scope(principal: AdminKey, tenant: PathTenant) -> Access:
    return Access(principal, scope_for(principal, tenant))


async def sees_unowned(ctx: AppContext, conn: AsyncConnection, access: Access) -> bool:
    """Whether the caller sees rows of no town (dead letters of unknown devices, hub alerts): a hub admin key
    without a town prefix, or any key on a hub of one town (a one-town install sees what it always saw)."""
    return access.tenant is None or len(await ctx.tenants.all(conn)) <= 1


OperatorScope = Annotated[Access, Depends(operator_scope)]
AdminScope = Annotated[Access, Depends(admin_scope)]
