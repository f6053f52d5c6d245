"""Dead letters (operator): rejected messages with their stage and reason, newest first. An operator key sees
those of its town's devices; those of unknown devices only a hub admin key (without a town prefix) sees, or any
key on a hub of one town."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from ..deps import ConnDep, CtxDep, OperatorScope, sees_unowned
from ..models.ops import DeadLettersPublic
from ..problems import responses
from ..queries import dead_letters as q
from ..timerange import check_instant, invalid

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/dead-letters", tags=["operations"], responses=responses(401, 403, 422))


@router.get(
    "",
    response_model=DeadLettersPublic,
    summary="dead letters, filtered by stage, device and time",
    description="An operator key sees the dead letters of its town's devices; those without a known device "
    "(bad envelopes, unknown DevEUIs) only a hub admin key without a town prefix, or any key on a hub of one town.",
)
async def list_dead_letters(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    stage: Annotated[
        str | None, Query(max_length=32, description="envelope | size | source | device | codec | database")
    ] = None,
    dev_eui: Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{16}$")] = None,
    start: Annotated[datetime | None, Query(description="received at or after")] = None,
    end: Annotated[datetime | None, Query(description="received before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DeadLettersPublic:
    tz = ctx.settings.timezone
    start_, end_ = check_instant(start, "start", tz), check_instant(end, "end", tz)
    if start_ is not None and end_ is not None and start_ >= end_:
        raise invalid("start", "must be before end")
    where = q.DeadLetterFilter(
        tenant=access.tenant,
        unowned=await sees_unowned(ctx, conn, access),
        stage=stage,
        dev_eui=dev_eui.lower() if dev_eui else None,
        start=start_,
        end=end_,
    )
    rows = await q.list_dead_letters(conn, where=where, limit=limit, offset=offset)
    total = await q.count_dead_letters(conn, where=where)
    return DeadLettersPublic.model_validate({"data": rows, "count": total})
