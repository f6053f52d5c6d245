"""The app factory and its lifespan: a psycopg async pool, the live hub (LISTEN + poll), middleware and routers.

Routers are listed by module in :data:`ROUTERS`; each module exposes ``router``. A new page or resource adds its
module to the list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from stadtpuls.logs import get_logger
from stadtpuls.settings import Settings, SettingsError, load

from .auth import KeyRing
from .deps import AppContext
from .district import add_district
from .edge import BodyTimeoutMiddleware, KeyFirstMiddleware, PublicHostMiddleware, SecurityHeadersMiddleware
from .live import LiveHub
from .metrics import ApiMetrics
from .middleware import BodyLimitMiddleware, MetricsMiddleware, SplitCORSMiddleware
from .opendata.topics import open_data_topics
from .problems import ProblemDetail, install_handlers, responses
from .queries import buses as buses_q
from .queries import health as health_q
from .queries import parking as parking_q
from .ratelimit import RateLimiter
from .sse import StreamSlots
from .tenancy import TenantPrefixMiddleware
from .towns import add_site_towns

__all__ = ["ROUTERS", "create_app"]

ROUTERS: list[str] = [
    "stadtpuls.api.routes.health",
    "stadtpuls.api.routes.parking",
    "stadtpuls.api.routes.buses",
    "stadtpuls.api.routes.waste",
    "stadtpuls.api.routes.devices",
    "stadtpuls.api.routes.sites",
    "stadtpuls.api.routes.dead_letters",
    "stadtpuls.api.routes.alerts",
    "stadtpuls.api.routes.keys",
    "stadtpuls.api.routes.tenants",
    "stadtpuls.api.routes.parkapi",
    "stadtpuls.api.routes.datex2",
    "stadtpuls.api.routes.gtfsrt",
    "stadtpuls.api.routes.sta",
    "stadtpuls.api.routes.ngsild",
    "stadtpuls.api.routes.pages",
    "stadtpuls.api.routes.map",
    "stadtpuls.api.routes.district",
    "stadtpuls.api.routes.docs",
]
POOL_MIN, POOL_MAX = 2, 10
START_WAIT_S = 10.0
CONN_TIMEOUT_S = 5.0
log = get_logger("stadtpuls.api")


def _version() -> str:
    try:
        return version("stadtpuls")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0"


def _topics(hub: LiveHub, settings: Settings) -> None:
    async def lots(pool: AsyncConnectionPool) -> dict[str, Any]:
        async with pool.connection() as conn:
            rows = await parking_q.lots(conn)
        return {"data": rows, "count": len(rows)}

    async def vehicles(pool: AsyncConnectionPool) -> dict[str, Any]:
        async with pool.connection() as conn:
            rows = await buses_q.vehicles(conn, tz=settings.timezone)
        return {"data": rows, "count": len(rows)}

    async def lines(pool: AsyncConnectionPool) -> dict[str, Any]:
        _, current = await hub.get("vehicles")
        async with pool.connection() as conn:
            rows = await buses_q.lines(conn, vehicles=current["data"])
        return {"data": rows, "count": len(rows)}

    ttl = settings.api_cache_ttl
    hub.add("lots", lots, ttl)
    hub.add("vehicles", vehicles, ttl)
    hub.add("lines", lines, ttl)
    add_site_towns(hub, ttl)
    open_data_topics(hub, settings)
    add_district(hub, settings)


def create_app(
    settings: Settings | None = None,
    *,
    routers: Sequence[str] = ROUTERS,
    start_wait: float = START_WAIT_S,
    conn_timeout: float = CONN_TIMEOUT_S,
) -> FastAPI:
    """The API. ``settings`` default to the environment (:func:`stadtpuls.settings.load`). The lifespan waits up to
    ``start_wait`` seconds for the database, then starts anyway; a request waits up to ``conn_timeout`` seconds for
    a connection, then gets a 503 problem."""
    settings = settings or load()
    if settings.database_url is None:
        raise SettingsError(["STADTPULS_DATABASE_URL"], "STADTPULS_DATABASE_URL is not set (postgresql://...)")
    url = settings.database_url.get_secret_value()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def new_pool() -> AsyncConnectionPool:
            return AsyncConnectionPool(
                url,
                open=False,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                name="stadtpuls-api",
                timeout=conn_timeout,
                kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
            )

        pool = new_pool()
        await pool.open()
        try:
            await pool.wait(timeout=start_wait)
        except PoolTimeout:  # wait() closed that pool: a new one keeps connecting in the background
            log.warning("database not reachable at start; answering 503 until it is")
            pool = new_pool()
            await pool.open()
        hub = LiveHub(pool, url, poll_interval=settings.live_poll_interval)
        _topics(hub, settings)
        ctx = AppContext(
            settings=settings,
            pool=pool,
            hub=hub,
            metrics=metrics,
            keys=KeyRing(
                settings.operator_key.get_secret_value() if settings.operator_key else None,
                settings.admin_key.get_secret_value() if settings.admin_key else None,
            ),
            limiter=RateLimiter(settings.rate_limit_per_minute),
            key_failures=RateLimiter(settings.key_failures_per_minute),
            streams=StreamSlots(settings.sse_max_streams, settings.sse_max_streams_per_client),
        )
        try:
            async with pool.connection() as conn:
                ctx.mode = await health_q.schema_mode(conn)
        except PoolTimeout:
            pass
        app.state.ctx = ctx
        await hub.start()
        log.info("api started", extra={"mode": ctx.mode})
        try:
            yield
        finally:
            await hub.stop()
            await pool.close()

    app = FastAPI(
        title="stadtpuls API",
        version=_version(),
        description="Free parking for citizens, pickup plans for waste operators, bus occupancy and fleet "
        "management. Errors are application/problem+json. Operator routes need the X-API-Key header.",
        lifespan=lifespan,
        docs_url=None,  # the console is served with its assets by routes.docs, not from a CDN
        redoc_url=None,  # off: ReDoc's build loads its vendor's logo from a CDN
    )
    install_handlers(app)
    for name in routers:
        app.include_router(import_module(name).router)
    # added innermost first (see api/edge.py for the order)
    app.add_middleware(KeyFirstMiddleware)
    app.add_middleware(BodyTimeoutMiddleware, timeout=settings.api_body_timeout)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        SplitCORSMiddleware, public_origins=settings.cors_origins, operator_origins=settings.operator_cors_origins
    )
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.trusted_hosts != ["*"]:
        app.add_middleware(PublicHostMiddleware, hosts=settings.trusted_hosts, internal_port=settings.api_metrics_port)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TenantPrefixMiddleware)  # outermost: every layer sees the path without the town prefix
    app.state.metrics = metrics
    _register_problem_schema(app)
    return app


def _register_problem_schema(app: FastAPI) -> None:
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = base()
            schema.setdefault("components", {}).setdefault("schemas", {})["ProblemDetail"] = (
                ProblemDetail.model_json_schema()
            )
            for ops in schema.get("paths", {}).values():  # what the edge answers before a route runs
                for op in ops.values():
                    extra = responses(429) if op.get("security") else {}  # wrong keys throttled (api/deps.py)
                    if "requestBody" in op:
                        extra |= responses(408, 413)  # body deadline and size limit (api/edge.py, middleware.py)
                    for status, spec in extra.items():
                        op.setdefault("responses", {}).setdefault(str(status), spec)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
