"""Tenants (admin): the towns of the hub; list, create, change.

A town's sites, devices and keys name its slug; its pages and API live under ``/t/{slug}`` and
``/api/v1/t/{slug}``. A per-town field left null takes the hub's setting. A change is served at once (the app's
tenant cache is cleared).
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Path

from stadtpuls.tenants import SLUG_PATTERN

from ..deps import AdminKey, AdminScope, ConnDep, CtxDep
from ..models.tenants import TenantCreate, TenantPublic, TenantsPublic, TenantUpdate
from ..problems import Problem, integrity_problem, responses
from ..queries import tenants as q

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants"], responses=responses(401, 403, 422))
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, description="the town's slug")]


@router.get(
    "",
    response_model=TenantsPublic,
    summary="the towns of the hub with every field",
    description="Needs a hub admin key. Under a town prefix, only that town.",
)
async def list_tenants(conn: ConnDep, access: AdminScope) -> TenantsPublic:
    rows = [r for r in await q.list_tenants(conn) if access.tenant in (None, r["slug"])]
    return TenantsPublic.model_validate({"data": rows, "count": len(rows)})


@router.post(
    "",
    response_model=TenantPublic,
    status_code=201,
    responses=responses(409),
    summary="add a town",
    description="Needs a hub admin key. 409 when the slug is taken. Null per-town fields take the hub's settings "
    "(STADTPULS_TIMEZONE, STADTPULS_DEPOT_LAT/LON, STADTPULS_SERVICE_DAYS, STADTPULS_PICKUP_START_HOUR).",
)
async def create_tenant(ctx: CtxDep, conn: ConnDep, _: AdminKey, tenant: TenantCreate) -> TenantPublic:
    try:
        await q.insert_tenant(conn, fields=tenant.model_dump(mode="json"))
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    ctx.tenants.invalidate()
    row = await q.get_tenant(conn, slug=tenant.slug)
    assert row is not None
    return TenantPublic.model_validate(row)


@router.patch(
    "/{slug}",
    response_model=TenantPublic,
    responses=responses(404),
    summary="change a town (only the fields sent; null clears a per-town field)",
    description="Needs a hub admin key. The slug does not change (URLs and rows name it). Under a town prefix, "
    "only that town.",
)
async def update_tenant(
    ctx: CtxDep, conn: ConnDep, access: AdminScope, slug: Slug, change: TenantUpdate
) -> TenantPublic:
    if access.tenant not in (None, slug):
        raise Problem(404, f"no town {slug!r}")
    fields = change.model_dump(mode="json", exclude_unset=True)
    if "name" in fields and fields["name"] is None:
        raise Problem(422, "name: may not be null", title="Invalid request")
    try:
        found = await q.update_tenant(conn, slug=slug, fields=fields)
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    if not found:
        raise Problem(404, f"no town {slug!r}")
    ctx.tenants.invalidate()
    row = await q.get_tenant(conn, slug=slug)
    assert row is not None
    return TenantPublic.model_validate(row)
