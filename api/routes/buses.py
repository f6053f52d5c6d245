"""Buses (public): occupancy per vehicle and line now, hourly usage per line and stop, a line's load over time
(passengers on board, from the rollups), a live stream; under a town's prefix (``/api/v1/t/{slug}/buses/...``)
the town's lines, vehicles and stops only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from ..deps import ConnDep, CtxDep, PathTenant, rate_limited
from ..models.buses import BusStopsPublic, LineHourlyPublic, LineLoadPublic, LinesPublic, VehiclesPublic
from ..occupancy import history_json
from ..problems import Problem, responses
from ..queries import buses as q
from ..queries import rollups
from ..sse import event_stream
from ..tenancy import path_tenant
from ..timerange import history_range, resolve_range
from ..towns import town_body, town_timezone

__all__ = ["router"]

router = APIRouter(
    prefix="/api/v1/buses", tags=["buses"], dependencies=[Depends(rate_limited)], responses=responses(422, 429)
)


@router.get("/vehicles", response_model=VehiclesPublic, summary="every vehicle's passengers now")
async def list_vehicles(ctx: CtxDep, tenant: PathTenant) -> Response:
    body, _ = await town_body(ctx.hub, "vehicles", path_tenant(tenant))
    return Response(body, media_type="application/json")


@router.get("/lines", response_model=LinesPublic, summary="every line's passengers now (vehicles in service)")
async def list_lines(ctx: CtxDep, tenant: PathTenant) -> Response:
    body, _ = await town_body(ctx.hub, "lines", path_tenant(tenant))
    return Response(body, media_type="application/json")


@router.get("/stops", response_model=BusStopsPublic, summary="every stop with its position, by line and order")
async def list_stops(conn: ConnDep, tenant: PathTenant) -> BusStopsPublic:
    rows = await q.stops(conn, tenant=path_tenant(tenant))
    return BusStopsPublic.model_validate({"data": rows, "count": len(rows)})


@router.get(
    "/lines/{line_id}/hourly",
    response_model=LineHourlyPublic,
    responses=responses(404),
    summary="boardings and alightings per hour and stop",
)
async def line_hourly(
    ctx: CtxDep,
    conn: ConnDep,
    tenant: PathTenant,
    line_id: Annotated[str, Path(min_length=1, max_length=64)],
    start: Annotated[datetime | None, Query(description="default: end minus 7 days; naive = local time")] = None,
    end: Annotated[datetime | None, Query(description="default: now (exclusive)")] = None,
) -> LineHourlyPublic:
    s = ctx.settings
    tz = town_timezone(s, tenant)
    start_, end_ = resolve_range(
        start,
        end,
        tz=tz,
        now=datetime.now(UTC),
        default_span=timedelta(days=7),
        max_span=timedelta(days=s.api_max_range_days),
        step=timedelta(hours=1),
    )
    if not await q.line_exists(conn, line_id=line_id, tenant=path_tenant(tenant)):
        raise Problem(404, f"no bus line {line_id!r}")
    zone = ZoneInfo(tz)
    rows = await q.hourly(conn, line_id=line_id, start=start_, end=end_)
    for r in rows:
        r["hour"] = r["hour"].astimezone(zone)
    return LineHourlyPublic.model_validate(
        {
            "line_id": line_id,
            "timezone": tz,
            "start": start_.astimezone(zone),
            "end": end_.astimezone(zone),
            "data": rows,
            "count": len(rows),
        }
    )


@router.get(
    "/lines/{line_id}/load",
    response_model=LineLoadPublic,
    responses=responses(404),
    summary="passengers on board a line's vehicles over time (time-weighted), bucketed in the reporting time zone",
)
async def line_load(
    ctx: CtxDep,
    conn: ConnDep,
    tenant: PathTenant,
    line_id: Annotated[str, Path(min_length=1, max_length=64)],
    start: Annotated[datetime | None, Query(description="default: end minus one day (30 days for day buckets)")] = None,
    end: Annotated[datetime | None, Query(description="default: now")] = None,
    bucket: Annotated[Literal["15min", "hour", "day"], Query()] = "hour",
) -> Response:
    s = ctx.settings
    tz = town_timezone(s, tenant)
    now = datetime.now(UTC)
    start_, end_ = history_range(start, end, bucket=bucket, tz=tz, now=now, max_range_days=s.api_max_range_days)
    if not await q.line_exists(conn, line_id=line_id, tenant=path_tenant(tenant)):
        raise Problem(404, f"no bus line {line_id!r}")
    span = rollups.Span(line_id, start_, end_, bucket, tz, now)
    items, count = await rollups.history_json(conn, rollups.LINE_LOAD, q.LINE_BUCKET_JSON, span)
    return history_json({"line_id": line_id, "bucket": bucket, "timezone": tz}, items, count)


@router.get(
    "/stream",
    summary="server-sent events: `lines` and `vehicles` (the bodies of GET /lines and "
    "GET /vehicles) on connect and on every change, `ping` every 15 s",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(ctx: CtxDep, request: Request, tenant: PathTenant) -> StreamingResponse:
    return event_stream(ctx, request, ["lines", "vehicles"], path_tenant(tenant))
