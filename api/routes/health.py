"""``/health`` (database, ingest lag, mode) and ``/metrics`` (Prometheus text; on the internal metrics port, or
with an operator key, see :func:`stadtpuls.api.deps.metrics_access`)."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from ..deps import CtxDep, metrics_access
from ..metrics import CONTENT_TYPE
from ..models.ops import HealthPublic
from ..problems import responses
from ..queries import health as q

__all__ = ["router"]

router = APIRouter(tags=["operations"])
TIMEOUT_S = 2.0


@router.get(
    "/health",
    response_model=HealthPublic,
    summary="database reachable, ingest lag and storage mode",
    responses={503: {"model": HealthPublic, "description": "database not reachable"}},
)
async def health(ctx: CtxDep) -> JSONResponse:
    database, lag, newest = False, None, None
    try:
        async with ctx.pool.connection(timeout=min(TIMEOUT_S, ctx.pool.timeout)) as conn:
            newest, lag = await q.ingest_lag(conn)
            if ctx.mode == "unknown":
                ctx.mode = await q.schema_mode(conn)
            database = True
    except psycopg.OperationalError:
        pass
    body = HealthPublic(
        status="ok" if database else "degraded",
        database=database,
        mode=ctx.mode,
        ingest_lag_s=lag,
        newest_uplink_at=newest,
        live_listening=ctx.hub.listening,
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if database else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **responses(401, 403, 404, 429)},
    dependencies=[Depends(metrics_access)],
)
async def metrics(ctx: CtxDep) -> Response:
    stats = None
    try:
        async with ctx.pool.connection(timeout=min(TIMEOUT_S, ctx.pool.timeout)) as conn:
            stats = await q.stats(conn)
        _, lots = await ctx.hub.get("lots")
    except psycopg.OperationalError:
        lots = {"data": []}
    ctx.metrics.set_database(stats, lots["data"])
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)
