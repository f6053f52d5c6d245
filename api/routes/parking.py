"""Parking (public): lots now, one lot, a lot's history, GeoJSON and a live stream; under a town's prefix
(``/api/v1/t/{slug}/parking/...``) the town's lots only, another town's lot is 404."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from ..deps import AppContext, ConnDep, CtxDep, PathTenant, rate_limited
from ..models.parking import GeoJSONFeatureCollection, LotHistoryPublic, LotPublic, LotsPublic
from ..occupancy import history_json
from ..problems import Problem, responses
from ..queries import parking as q
from ..queries import rollups
from ..sse import event_stream
from ..tenancy import Tenant, path_tenant
from ..timerange import check_instant, history_range
from ..towns import in_town, town_body, town_timezone

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/parking", tags=["parking"], dependencies=[Depends(rate_limited)], responses=responses(422, 429)
)

LotId = Annotated[str, Path(min_length=1, max_length=64, description="the lot's site_id")]
GEOJSON = "application/geo+json"


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def _live_lots(ctx: AppContext, tenant: Tenant | None) -> list[dict[str, Any]]:
    """The cached lot summaries (of the path's town)."""
    _, data = await ctx.hub.get("lots")
    if tenant is None:
        return list(data["data"])
    keep = await in_town(ctx.hub, tenant.slug)
    return [lot for lot in data["data"] if keep.site(lot["lot_id"])]


@router.get("/lots", response_model=LotsPublic, summary="every lot with free spaces now (or at an instant)")
async def list_lots(
    ctx: CtxDep,
    tenant: PathTenant,
    at: Annotated[datetime | None, Query(description="state at this instant instead of now")] = None,
) -> Response:
    at = check_instant(at, "at", town_timezone(ctx.settings, tenant))
    if at is None:
        body, _ = await town_body(ctx.hub, "lots", path_tenant(tenant))
        return _json(body)
    async with ctx.pool.connection() as conn:
        rows = await q.lots(conn, at=at, tenant=path_tenant(tenant))
    return _json(orjson.dumps({"data": rows, "count": len(rows)}))


@router.get(
    "/lots.geojson",
    response_model=GeoJSONFeatureCollection,
    summary="lots as GeoJSON points",
    responses={200: {"content": {GEOJSON: {}}}},
)
async def lots_geojson(ctx: CtxDep, tenant: PathTenant) -> Response:
    features = [
        {
            "type": "Feature",
            "id": lot["lot_id"],
            "geometry": {"type": "Point", "coordinates": [lot["lon"], lot["lat"]]},
            "properties": {k: v for k, v in lot.items() if k not in ("lat", "lon")},
        }
        for lot in await _live_lots(ctx, tenant)
        if lot["lat"] is not None and lot["lon"] is not None
    ]
    return Response(orjson.dumps({"type": "FeatureCollection", "features": features}), media_type=GEOJSON)


@router.get("/lots/{lot_id}", response_model=LotPublic, responses=responses(404), summary="one lot")
async def get_lot(
    ctx: CtxDep,
    tenant: PathTenant,
    lot_id: LotId,
    at: Annotated[datetime | None, Query(description="state at this instant instead of now")] = None,
) -> Response:
    at = check_instant(at, "at", town_timezone(ctx.settings, tenant))
    if at is None:
        found = [lot for lot in await _live_lots(ctx, tenant) if lot["lot_id"] == lot_id]
    else:
        async with ctx.pool.connection() as conn:
            found = await q.lots(conn, at=at, lot_id=lot_id, tenant=path_tenant(tenant))
    if not found:
        raise Problem(404, f"no parking lot {lot_id!r}")
    return _json(orjson.dumps(found[0]))


@router.get(
    "/lots/{lot_id}/history",
    response_model=LotHistoryPublic,
    responses=responses(404),
    summary="a lot's occupancy over time, bucketed in the reporting time zone",
)
async def lot_history(
    ctx: CtxDep,
    conn: ConnDep,
    tenant: PathTenant,
    lot_id: LotId,
    start: Annotated[datetime | None, Query(description="default: end minus one day (30 days for day buckets)")] = None,
    end: Annotated[datetime | None, Query(description="default: now")] = None,
    bucket: Annotated[Literal["15min", "hour", "day"], Query()] = "hour",
) -> Response:
    s = ctx.settings
    tz = town_timezone(s, tenant)
    now = datetime.now(UTC)
    start_, end_ = history_range(start, end, bucket=bucket, tz=tz, now=now, max_range_days=s.api_max_range_days)
    capacity = await q.lot_capacity(conn, lot_id=lot_id, tenant=path_tenant(tenant))
    if capacity is None:
        raise Problem(404, f"no parking lot {lot_id!r}")
    span = rollups.Span(lot_id, start_, end_, bucket, tz, now)
    items, count = await rollups.history_json(conn, rollups.PARKING_LOT, q.LOT_BUCKET_JSON, span, capacity=capacity)
    return history_json({"lot_id": lot_id, "bucket": bucket, "timezone": tz, "capacity": capacity}, items, count)


@router.get(
    "/stream",
    summary="server-sent events: `lots` (the body of GET /lots) on connect and on every change, `ping` every 15 s",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(ctx: CtxDep, request: Request, tenant: PathTenant) -> StreamingResponse:
    return event_stream(ctx, request, ["lots"], path_tenant(tenant))
