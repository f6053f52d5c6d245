"""NGSI-LD (public, read-only) at ``/ngsi-ld/v1``: ``GET /entities`` (``type``, ``id``, ``q``, ``georel``,
``limit``/``offset``, ``options=keyValues``, ``count``), ``GET /entities/{id}`` and ``GET
/temporal/entities/{id}`` (``timerel``, ``timeAt``, ``endTimeAt``, ``lastN``).

The ``@context`` (Smart Data Models) is in the body when the client accepts ``application/ld+json``, otherwise in a
``Link`` header (NGSI-LD 6.3.5). Errors are NGSI-LD ProblemDetails (``.../errors/BadRequestData``,
``.../errors/ResourceNotFound``). Under a town's prefix (``/t/{slug}/ngsi-ld/v1``) the town's entities only; another
town's entity is not found. Answers of ``/entities`` are kept per request URL for ``api_cache_ttl`` seconds, like
SensorThings' (:class:`~stadtpuls.api.answers.AnswerCache`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from ..answers import AnswerCache
from ..deps import ConnDep, CtxDep, PathTenant, rate_limited
from ..ngsild import CONTEXT, TYPES, QueryError, key_values, parse_geoquery, parse_q
from ..ngsild import models as m
from ..ngsild.current import current_entities
from ..problems import PROBLEM_JSON, responses
from ..queries import ngsild as ngsild_q
from ..tenancy import Tenant, path_tenant
from ..towns import page_prefix

__all__ = ["CACHE_SIZE", "router"]

CACHE_SIZE = 256

router = APIRouter(
    prefix="/ngsi-ld/v1",
    tags=["NGSI-LD"],
    dependencies=[Depends(rate_limited)],
    responses=responses(400, 404, 429),
)
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
LINK = f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
JSON_LD = "application/ld+json"
OK: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {}, JSON_LD: {}}, "description": "NGSI-LD entities"}
}


class NgsiError(Exception):
    def __init__(self, status: int, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail


def _error(e: NgsiError) -> Response:
    body = {"type": ERRORS + e.kind, "title": e.kind, "status": e.status, "detail": e.detail}
    return Response(orjson.dumps(body), status_code=e.status, media_type=PROBLEM_JSON)


def _answer(request: Request, body: Any, headers: dict[str, str] | None = None) -> Response:
    """JSON with the context in a Link header, or JSON-LD with ``@context`` in each entity."""
    headers = dict(headers or {})
    if JSON_LD in request.headers.get("accept", ""):
        context = [CONTEXT, m.CORE_CONTEXT]
        if isinstance(body, list):
            body = [{**e, "@context": context} for e in body]
        else:
            body = {**body, "@context": context}
        return Response(orjson.dumps(body), media_type=JSON_LD, headers=headers)
    headers["Link"] = LINK
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def _entities(conn: ConnDep, ctx: CtxDep, tenant: Tenant | None, types: set[str]) -> list[dict[str, Any]]:
    s = ctx.settings
    return await current_entities(
        conn, types, tz=s.timezone, max_age_days=s.api_max_range_days, tenant=path_tenant(tenant)
    )


def _type_of(entity_id: str) -> tuple[str, str]:
    parts = entity_id.split(":", 3)
    if len(parts) != 4 or parts[:2] != ["urn", "ngsi-ld"] or parts[2] not in TYPES:
        raise NgsiError(404, "ResourceNotFound", f"no entity {entity_id[:100]!r}")
    return parts[2], parts[3]


@router.get("/entities", summary="entities by type, id, q and georel (Smart Data Models)", responses=OK)
async def entities(
    request: Request,
    ctx: CtxDep,
    tenant: PathTenant,
    type_: Annotated[str | None, Query(alias="type", max_length=200, description="comma-separated types")] = None,
    id_: Annotated[str | None, Query(alias="id", max_length=4000, description="comma-separated entity ids")] = None,
    q: Annotated[str | None, Query(max_length=1000, description='e.g. availableSpotNumber>5;name=="Markt"')] = None,
    georel: Annotated[str | None, Query(max_length=200, description="near;maxDistance==500, within")] = None,
    geometry: Annotated[str | None, Query(max_length=20)] = None,
    coordinates: Annotated[str | None, Query(max_length=4000)] = None,
    limit: Annotated[int, Query(ge=0, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    options: Annotated[str | None, Query(max_length=100, description="keyValues")] = None,
    count: Annotated[bool, Query()] = False,
) -> Response:
    try:
        if not type_ and not id_ and not q and not georel:
            raise NgsiError(400, "BadRequestData", "give at least one of type, id, q or georel")
        types = set(type_.split(",")) if type_ else set(TYPES)
        unknown = types - set(TYPES)
        if unknown:
            raise NgsiError(400, "BadRequestData", f"unknown type {sorted(unknown)[0]!r}; served: {', '.join(TYPES)}")
        tests: list[Callable[[dict[str, Any]], bool]] = []
        if id_:
            ids = set(id_.split(","))
            tests.append(lambda e: e["id"] in ids)
        if q:
            tests.append(parse_q(q))
        if georel:
            tests.append(parse_geoquery(georel, geometry, coordinates))
    except QueryError as e:
        return _error(NgsiError(400, "BadRequestData", str(e)))
    except NgsiError as e:
        return _error(e)

    async def compute() -> tuple[bytes, str | None, dict[str, str]]:
        async with ctx.pool.connection() as conn:
            found = [e for e in await _entities(conn, ctx, tenant, types) if all(t(e) for t in tests)]
        page = found[offset : offset + limit]
        if options == "keyValues":
            page = [key_values(e) for e in page]
        r = _answer(request, page, {"NGSILD-Results-Count": str(len(found))} if count else None)
        headers = {k: v for k, v in r.headers.items() if k not in ("content-length", "content-type")}
        return bytes(r.body), r.media_type, headers

    cache: AnswerCache[tuple[bytes, str | None, dict[str, str]]] = ctx.answer_cache("ngsild", CACHE_SIZE)
    ld = JSON_LD in request.headers.get("accept", "")
    key = f"{ld} {page_prefix(request)}{request.url.path}?{request.url.query}"
    body, media, headers = await cache.get(key, compute)
    return Response(body, media_type=media, headers=headers)


@router.get("/entities/{entity_id}", summary="one entity by its id (urn:ngsi-ld:<type>:<site_id>)", responses=OK)
async def entity(
    entity_id: str,
    request: Request,
    conn: ConnDep,
    ctx: CtxDep,
    tenant: PathTenant,
    options: Annotated[str | None, Query(max_length=100, description="keyValues")] = None,
) -> Response:
    try:
        kind, _ = _type_of(entity_id)
        found = [e for e in await _entities(conn, ctx, tenant, {kind}) if e["id"] == entity_id]
        if not found:
            raise NgsiError(404, "ResourceNotFound", f"no entity {entity_id!r}")
    except NgsiError as e:
        return _error(e)
    return _answer(request, key_values(found[0]) if options == "keyValues" else found[0])


def _instant(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NgsiError(400, "BadRequestData", f"{name} is not an ISO 8601 date-time: {text[:40]!r}") from None
    if t.tzinfo is None:
        raise NgsiError(400, "BadRequestData", f"{name} needs a time zone (Z)")
    return t


@router.get(
    "/temporal/entities/{entity_id}",
    summary="the history of an entity's measured attribute (fillingLevel, status, peopleCount)",
    responses=OK,
)
async def temporal(
    entity_id: str,
    request: Request,
    conn: ConnDep,
    ctx: CtxDep,
    tenant: PathTenant,
    timerel: Annotated[str | None, Query(max_length=10, description="before, after or between")] = None,
    time_at: Annotated[str | None, Query(alias="timeAt", max_length=40)] = None,
    end_time_at: Annotated[str | None, Query(alias="endTimeAt", max_length=40)] = None,
    last_n: Annotated[int | None, Query(alias="lastN", ge=1, le=10000)] = None,
) -> Response:
    try:
        kind, site_id = _type_of(entity_id)
        if kind not in ngsild_q.HISTORY:
            raise NgsiError(400, "BadRequestData", f"{kind} has no temporal history here")
        at, end = _instant("timeAt", time_at), _instant("endTimeAt", end_time_at)
        if timerel not in (None, "before", "after", "between") or (timerel and at is None):
            raise NgsiError(400, "BadRequestData", "timerel is before, after or between, with timeAt")
        if timerel == "between" and (end is None or at is None or end <= at):
            raise NgsiError(400, "BadRequestData", "timerel=between needs endTimeAt after timeAt")
        start, stop = (at, end) if timerel == "between" else (at, None) if timerel == "after" else (None, at)
        now = datetime.now(UTC)
        stop = stop or now
        start = start or stop - timedelta(days=ctx.settings.api_max_range_days)
        if stop - start > timedelta(days=ctx.settings.api_max_range_days):
            raise NgsiError(400, "BadRequestData", f"the range is longer than {ctx.settings.api_max_range_days} days")
        current = [e for e in await _entities(conn, ctx, tenant, {kind}) if e["id"] == entity_id]
        if not current:
            raise NgsiError(404, "ResourceNotFound", f"no entity {entity_id!r}")
    except NgsiError as e:
        return _error(e)
    attr = ngsild_q.HISTORY[kind][0]
    rows = await ngsild_q.history(conn, kind=kind, site_id=site_id, start=start, end=stop, last_n=last_n)
    body = {k: v for k, v in current[0].items() if k in ("id", "type", "name", "location")}
    body[attr] = [m.prop(_history_value(kind, r["value"]), r["time"]) for r in rows]
    return _answer(request, body)


def _history_value(kind: str, value: Any) -> Any:
    if kind == "WasteContainer":
        return min(max(round(float(value) / 100.0, 4), 0.0), 1.0)
    if kind == "ParkingSpot":
        return "occupied" if value else "free"
    return value
