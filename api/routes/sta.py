"""OGC SensorThings API v1.1 (public, read-only) at ``/sta/v1.1``: the service root and every resource path.

The paths and query options are the standard's (OData-style ``Things(5)/Datastreams?$filter=...``), so they are
read here from the raw request rather than declared one by one; :mod:`stadtpuls.api.sta` answers them.
"""

from __future__ import annotations

import orjson
import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..deps import ConnDep, CtxDep, rate_limited
from ..problems import Problem, responses
from ..sta import FilterError, NotFound, answer, service_root

__all__ = ["PREFIX", "router"]

PREFIX = "/sta/v1.1"
router = APIRouter(
    prefix=PREFIX,
    tags=["SensorThings API"],
    dependencies=[Depends(rate_limited)],
    responses=responses(400, 404, 429),
)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("", summary="the SensorThings service root: entity sets and conformance classes")
async def root(request: Request, ctx: CtxDep) -> Response:
    return _json(service_root(_base(request), ctx.settings.sta_mqtt_endpoints))


@router.get(
    "/{path:path}",
    responses={200: {"content": {"application/json": {}, "text/plain": {}}, "description": "the resource"}},
    summary="a SensorThings resource path (Things, Locations, Sensors, ObservedProperties, Datastreams, "
    "Observations, FeaturesOfInterest, HistoricalLocations) with the query options $top, $skip, $count, $orderby, "
    "$select, $filter, $expand",
)
async def resource(path: str, request: Request, conn: ConnDep) -> Response:
    try:
        body = await answer(conn, _base(request), path, request.query_params)
    except FilterError as e:
        raise Problem(400, str(e), title="Bad query") from None
    except NotFound as e:
        raise Problem(404, str(e)) from None
    except (psycopg.errors.DataError, psycopg.errors.NumericValueOutOfRange) as e:
        raise Problem(400, f"the query cannot be evaluated: {e.diag.message_primary}", title="Bad query") from None
    if isinstance(body, str):
        return Response(body, media_type="text/plain")
    return _json(body)
