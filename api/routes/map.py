"""The pages' maps: which tile server they draw on (``STADTPULS_MAP_TILE_URL``), or none."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..deps import CtxDep, rate_limited

__all__ = ["MapConfig", "router"]


class MapConfig(BaseModel):
    """Where the pages' maps take their raster tiles from (the hub's settings)."""

    tiles: bool = Field(description="false: markers and lines on a plain background, no tile requests")
    tile_url: str = Field(description="URL template with {z}, {x}, {y} (and {s} for a subdomain); '' without tiles")
    attribution: str = Field(description="text the tile server requires beside its map")
    attribution_url: str
    max_zoom: int


router = APIRouter(prefix="/api/v1", tags=["pages"], dependencies=[Depends(rate_limited)])


@router.get("/map", response_model=MapConfig, summary="tile server of the pages' maps")
async def map_config(ctx: CtxDep) -> MapConfig:
    s = ctx.settings
    return MapConfig(
        tiles=bool(s.map_tile_url),
        tile_url=s.map_tile_url,
        attribution=s.map_attribution,
        attribution_url=s.map_attribution_url,
        max_zoom=s.map_max_zoom,
    )
