"""GTFS-Realtime VehiclePositions (public, read-only): protobuf for transit apps, ``?format=json`` for people; under
a town's prefix (``/t/{slug}/api/public/gtfs-rt/...``) the town's buses only."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from google.transit import gtfs_realtime_pb2 as rt

from ..deps import CtxDep, PathTenant, rate_limited
from ..models.opendata import GtfsRtFeedJson
from ..opendata.gtfsrt import feed_json
from ..problems import responses
from ..tenancy import path_tenant
from ..towns import town_body, town_key

__all__ = ["PROTOBUF", "router"]

PROTOBUF = "application/x-protobuf"
router = APIRouter(
    prefix="/api/public/gtfs-rt",
    tags=["open data: GTFS-Realtime"],
    dependencies=[Depends(rate_limited)],
    responses=responses(400, 429),
)


@router.get(
    "/vehicle-positions.pb",
    response_model=GtfsRtFeedJson,
    summary="every bus in service with its line, last stop and occupancy (GTFS-Realtime VehiclePositions)",
    responses={
        200: {
            "description": "the FeedMessage: protobuf, or JSON with format=json",
            "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}, "application/json": {}},
        }
    },
)
async def vehicle_positions(
    ctx: CtxDep,
    tenant: PathTenant,
    format: Annotated[Literal["pb", "json"], Query(description="pb (default) or json")] = "pb",  # noqa: A002
) -> Response:
    slug = path_tenant(tenant)
    body, _ = await town_body(ctx.hub, "vehicle_positions", slug)
    if format == "json":
        people = ctx.hub.topics["vehicle_positions"].derived(
            town_key(slug, "json"), lambda: orjson.dumps(feed_json(rt.FeedMessage.FromString(body)))
        )
        return Response(people, media_type="application/json")
    return Response(body, media_type=PROTOBUF)
