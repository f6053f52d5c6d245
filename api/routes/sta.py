"""OGC SensorThings API v1.1 (public, read-only) at ``/sta/v1.1``: the service root and every resource path.

The paths and query options are the standard's (OData-style ``Things(5)/Datastreams?$filter=...``), so they are
read here from the raw request rather than declared one by one; :mod:`stadtpuls.api.sta` answers them.

Answers are kept per request URL for ``api_cache_ttl`` seconds (the freshness of the other public routes; at most
:data:`CACHE_SIZE` of them per app; :class:`~stadtpuls.api.answers.AnswerCache`): a GIS portal polling the same
query costs the database once per interval, not once per request. Errors are not kept.

Under a town's prefix (``/t/{slug}/sta/v1.1``) the service shows that town's entities (:mod:`stadtpuls.api.sta`),
its links keep the prefix, and its answers are kept under the prefixed URL (the path the routes see has lost it).
"""

from __future__ import annotations

import orjson
import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from psycopg import AsyncConnection

from ..answers import AnswerCache
from ..deps import CtxDep, PathTenant, rate_limited
from ..problems import Problem, responses
from ..sta import FilterError, NotFound, answer, service_root
from ..tenancy import Tenant, path_tenant
from ..towns import page_prefix

__all__ = ["CACHE_SIZE", "PREFIX", "router"]

PREFIX = "/sta/v1.1"
CACHE_SIZE = 512
router = APIRouter(
    prefix=PREFIX,
    tags=["SensorThings API"],
    dependencies=[Depends(rate_limited)],
    responses=responses(400, 404, 429),
)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + page_prefix(request) + PREFIX


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("", summary="the SensorThings service root: entity sets and conformance classes")
async def root(request: Request, ctx: CtxDep, tenant: PathTenant) -> Response:
    return _json(service_root(_base(request), ctx.settings.sta_mqtt_endpoints))


@router.get(
    "/{path:path}",
    responses={200: {"content": {"application/json": {}, "text/plain": {}}, "description": "the resource"}},
    summary="a SensorThings resource path (Things, Locations, Sensors, ObservedProperties, Datastreams, "
    "Observations, FeaturesOfInterest, HistoricalLocations) with the query options $top, $skip, $count, $orderby, "
    "$select, $filter, $expand",
)
async def resource(path: str, request: Request, ctx: CtxDep, tenant: PathTenant) -> Response:
    cache: AnswerCache[tuple[bytes, str]] = ctx.answer_cache("sta", CACHE_SIZE)
    key = _base(request) + "/" + path + "?" + request.url.query  # the town's prefix is part of the key

    async def compute() -> tuple[bytes, str]:
        async with ctx.pool.connection() as conn:
            return await _answer(conn, path, request, tenant)

    content, media = await cache.get(key, compute)
    return Response(content, media_type=media)


async def _answer(conn: AsyncConnection, path: str, request: Request, tenant: Tenant | None) -> tuple[bytes, str]:
    """The body and media type of a resource path."""
    try:
        body = await answer(conn, _base(request), path, request.query_params, tenant=path_tenant(tenant))
    except FilterError as e:
        raise Problem(400, str(e), title="Bad query") from None
    except NotFound as e:
        raise Problem(404, str(e)) from None
    except (psycopg.errors.DataError, psycopg.errors.NumericValueOutOfRange) as e:
        raise Problem(400, f"the query cannot be evaluated: {e.diag.message_primary}", title="Bad query") from None
    if isinstance(body, str):
        return body.encode(), "text/plain"
    return orjson.dumps(body), "application/json"
