"""DATEX II v3 parking publication light (public, read-only), JSON encoding, as ParkAPI serves it; under a town's
prefix (``/t/{slug}/api/public/datex2/json``) the town's lots and spaces only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from ..deps import CtxDep, PathTenant, rate_limited
from ..models.opendata import Datex2Publication
from ..problems import responses
from ..tenancy import path_tenant
from ..towns import town_body

__all__ = ["router"]

router = APIRouter(
    prefix="/api/public/datex2",
    tags=["open data: DATEX II"],
    dependencies=[Depends(rate_limited)],
    responses=responses(400, 429),
)


@router.get(
    "/json",
    response_model=Datex2Publication,
    summary="every parking lot (and with spaces=true every space) as a DATEX II v3 parking publication light (JSON)",
)
async def datex2_json(
    ctx: CtxDep,
    tenant: PathTenant,
    spaces: Annotated[bool, Query(description="also every single space as parkingSpace")] = False,
) -> Response:
    body, _ = await town_body(ctx.hub, "datex2_spaces" if spaces else "datex2", path_tenant(tenant))
    return Response(body, media_type="application/json")
