"""ParkAPI v3 (public, read-only): parking sites, parking spots and the source, from the cached feeds of
:mod:`stadtpuls.api.opendata.topics`. Bad parameters are 400 problems, as ParkAPI answers them. Under a town's
prefix (``/t/{slug}/api/public/v3/...``) the town's lots and spaces only (:mod:`stadtpuls.api.towns`)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from stadtpuls.fleet import LOT_TYPES, PURPOSES

from ..deps import CtxDep, PathTenant, rate_limited
from ..models.opendata import LotType, ParkingSite, ParkingSites, ParkingSpots, Purpose, Sources
from ..opendata import parkapi
from ..problems import Problem, responses
from ..tenancy import path_tenant
from ..towns import in_town, page_prefix, town_body, town_key

__all__ = ["router"]

router = APIRouter(
    prefix="/api/public/v3",
    tags=["open data: ParkAPI v3"],
    dependencies=[Depends(rate_limited)],
    responses=responses(400, 429),
)

MAX_ID = 2**31 - 1
Lat = Annotated[float | None, Query(ge=-90, le=90)]
Lon = Annotated[float | None, Query(ge=-180, le=180)]
Radius = Annotated[float | None, Query(gt=0, le=20_000_000, description="metres around lat/lon")]
Start = Annotated[int, Query(ge=0, le=MAX_ID, description="first id of the page (cursor)")]


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _geo(
    lat: Lat = None,
    lon: Lon = None,
    radius: Radius = None,
    lat_min: Lat = None,
    lat_max: Lat = None,
    lon_min: Lon = None,
    lon_max: Lon = None,
) -> parkapi.GeoFilter:
    geo = parkapi.GeoFilter(lat, lon, radius, lat_min, lat_max, lon_min, lon_max)
    if problem := geo.problem():
        raise Problem(400, problem, title="Invalid request")
    return geo


Geo = Annotated[parkapi.GeoFilter, Depends(_geo)]


def _ours(
    ctx: CtxDep,
    source_uid: Annotated[str | None, Query(max_length=256)] = None,
    source_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> bool:
    """Whether the source filters select this hub (the only source): otherwise the answer is empty."""
    return (source_uid is None or source_uid == ctx.settings.open_data_source_uid) and (
        source_id is None or source_id == parkapi.SOURCE_ID
    )


Ours = Annotated[bool, Depends(_ours)]


def _listing(request: Request, items: list[dict[str, Any]], *, start: int, limit: int | None) -> bytes:
    params = dict(request.query_params)
    path = page_prefix(request) + request.url.path
    return orjson.dumps(parkapi.page(items, start=start, limit=limit, path=path, params=params))


@router.get(
    "/parking-sites",
    response_model=ParkingSites,
    summary="parking lots with free spaces now (ParkAPI v3 parking sites, cursor-paged by id)",
)
async def parking_sites(
    ctx: CtxDep,
    request: Request,
    tenant: PathTenant,
    geo: Geo,
    ours: Ours,
    name: Annotated[str | None, Query(max_length=256, description="part of the name")] = None,
    purpose: Annotated[Purpose | None, Query(description=", ".join(PURPOSES))] = None,
    type_: Annotated[LotType | None, Query(alias="type", description=", ".join(LOT_TYPES))] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="page size (default: all)")] = None,
    start: Start = 0,
) -> Response:
    slug = path_tenant(tenant)
    keep = await in_town(ctx.hub, slug) if slug else None
    body, data = await town_body(ctx.hub, "parking_sites", slug)  # the last wait: data and body agree below
    if request.url.query == "":
        return _json(body)

    def answer() -> bytes:
        needle = name.casefold() if name else None
        items = [
            s
            for s in data["items"]
            if (keep is None or keep.site(s["original_uid"]))
            and (purpose is None or s["purpose"] == purpose)
            and (type_ is None or s["type"] == type_)
            and (needle is None or needle in s["name"].casefold())
            and geo.keeps(s["lat"], s["lon"])
        ]
        return _listing(request, items if ours else [], start=start, limit=limit)

    return _json(ctx.hub.topics["parking_sites"].derived(town_key(slug, request.url.query), answer))


@router.get(
    "/parking-sites/{parking_site_id}",
    response_model=ParkingSite,
    responses=responses(404),
    summary="one parking lot (ParkAPI v3 parking site)",
)
async def parking_site(
    ctx: CtxDep,
    tenant: PathTenant,
    parking_site_id: Annotated[int, Path(ge=1, le=MAX_ID, description="the site's id")],
) -> Response:
    _, data = await ctx.hub.get("parking_sites")
    keep = await in_town(ctx.hub, tenant.slug) if tenant else None
    for s in data["items"]:
        if s["id"] == parking_site_id and (keep is None or keep.site(s["original_uid"])):
            return _json(orjson.dumps(s))
    raise Problem(404, f"no parking site {parking_site_id}")


@router.get(
    "/parking-spots",
    response_model=ParkingSpots,
    summary="single parking spaces now: AVAILABLE, TAKEN or UNKNOWN (ParkAPI v3 parking spots)",
)
async def parking_spots(
    ctx: CtxDep,
    request: Request,
    tenant: PathTenant,
    geo: Geo,
    ours: Ours,
    parking_site_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="page size")] = 20,
    start: Start = 0,
) -> Response:
    slug = path_tenant(tenant)
    keep = await in_town(ctx.hub, slug) if slug else None
    _, data = await ctx.hub.get("parking_spots")

    def answer() -> bytes:
        items = data["items"]
        if parking_site_id is not None or geo.active or keep is not None:
            items = [
                p
                for p in items
                if (keep is None or keep.site(p["original_uid"]))
                and (parking_site_id is None or p["parking_site_id"] == parking_site_id)
                and geo.keeps(p["lat"], p["lon"])
            ]
        return _listing(request, items if ours else [], start=start, limit=limit)

    return _json(ctx.hub.topics["parking_spots"].derived(town_key(slug, request.url.query), answer))


@router.get("/sources", response_model=Sources, summary="the data source: this hub (ParkAPI v3 sources)")
async def sources(ctx: CtxDep, request: Request, tenant: PathTenant) -> Response:
    _, data = await ctx.hub.get("parking_sites")
    sites = data["items"]
    if tenant is not None:
        keep = await in_town(ctx.hub, tenant.slug)
        sites = [site for site in sites if keep.site(site["original_uid"])]
    s = ctx.settings
    item = parkapi.source_item(
        uid=s.open_data_source_uid,
        name=f"{s.open_data_name} · {tenant.title}" if tenant else s.open_data_name,
        public_url=s.open_data_public_url or str(request.base_url),
        license=s.open_data_license,
        sites=sites,
    )
    return _json(orjson.dumps({"items": [item], "total_count": 1}))
