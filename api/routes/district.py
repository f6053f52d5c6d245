"""The district (public): every town of the hub with its live figures, for ``/district`` and anyone's dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..deps import CtxDep, rate_limited
from ..district import DISTRICT
from ..models.district import DistrictPublic
from ..problems import responses

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["district"], dependencies=[Depends(rate_limited)], responses=responses(429))


@router.get(
    "/district",
    response_model=DistrictPublic,
    summary="every town with its free parking spaces, buses in service and their load, and bins over threshold",
)
async def get_district(ctx: CtxDep) -> Response:
    body, _ = await ctx.hub.get(DISTRICT)
    return Response(body, media_type="application/json")
