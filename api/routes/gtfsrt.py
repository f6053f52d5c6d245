"""GTFS-Realtime VehiclePositions (public, read-only): protobuf for transit apps, ``?format=json`` for people."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..deps import CtxDep, rate_limited
from ..models.opendata import GtfsRtFeedJson
from ..opendata.gtfsrt import feed_json
from ..problems import responses

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
    format: Annotated[Literal["pb", "json"], Query(description="pb (default) or json")] = "pb",  # noqa: A002
) -> Response:
    body, msg = await ctx.hub.get("vehicle_positions")
    if format == "json":
        people = ctx.hub.topics["vehicle_positions"].derived("json", lambda: orjson.dumps(feed_json(msg)))
        return Response(people, media_type="application/json")
    return Response(body, media_type=PROTOBUF)
