"""Sites (operator): list, get, create, update, delete.

Every route sees the sites of the caller's town only (an operator key's tenant, or the town of a ``/t/{slug}``
prefix for a hub admin key); another town's site is answered 404 like one that does not exist. A new site goes to
the caller's town, and a parent must be in the same town.
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Path, Query, Response

from ..deps import Access, ConnDep, CtxDep, OperatorScope
from ..models.fleet import SiteCreate, SiteKind, SitePublic, SitesPublic, SiteUpdate
from ..problems import Problem, integrity_problem, invalid_body, responses
from ..queries import sites as q

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/sites", tags=["sites"], responses=responses(401, 403, 422))
SiteId = Annotated[str, Path(min_length=1, max_length=64)]


async def _get(conn: psycopg.AsyncConnection, site_id: str, access: Access) -> dict[str, Any]:
    row = await q.get_site(conn, site_id=site_id, tenant=access.tenant)
    if row is None:
        raise Problem(404, f"no site {site_id!r}")
    return row


async def _check_parent(conn: psycopg.AsyncConnection, parent_id: str | None, tenant: str) -> None:
    """A parent site must exist in the child's town (422 otherwise, the same answer for another town's site)."""
    if parent_id is not None and await q.get_site(conn, site_id=parent_id, tenant=tenant) is None:
        raise invalid_body("parent_id", f"no site {parent_id!r}", "no such site")


def _refresh_live(ctx: Any) -> None:
    for topic in ctx.hub.topics.values():  # every live summary and open-data feed shows site facts
        topic.invalidate()


@router.get("", response_model=SitesPublic, summary="sites, filtered and paginated")
async def list_sites(
    conn: ConnDep,
    access: OperatorScope,
    kind: SiteKind | None = None,
    parent_id: Annotated[str | None, Query(max_length=64)] = None,
    q_: Annotated[str | None, Query(alias="q", max_length=100, description="part of the name or id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> SitesPublic:
    t = access.tenant
    rows = await q.list_sites(conn, tenant=t, kind=kind, parent_id=parent_id, q=q_, limit=limit, offset=offset)
    total = await q.count_sites(conn, tenant=t, kind=kind, parent_id=parent_id, q=q_)
    return SitesPublic.model_validate({"data": rows, "count": total})


@router.post(
    "",
    response_model=SitePublic,
    status_code=201,
    responses=responses(409),
    summary="add a site",
    description="The site goes to the caller's town: an operator key's tenant, or the town of the path's "
    "`/t/{slug}` prefix; a hub admin key without a prefix may name the `tenant` (default: `default`).",
)
async def create_site(ctx: CtxDep, conn: ConnDep, access: OperatorScope, site: SiteCreate) -> SitePublic:
    if site.parent_id == site.site_id:
        raise Problem(422, "parent_id: a site cannot be its own parent", title="Invalid request")
    if site.depth_mm is not None and site.full_mm is not None and site.full_mm >= site.depth_mm:
        raise Problem(422, "full_mm: must be less than depth_mm", title="Invalid request")
    tenant = access.owner(site.tenant)
    await _check_parent(conn, site.parent_id, tenant)
    try:
        await q.insert_site(conn, fields=site.model_dump(exclude={"tenant"}), tenant=tenant)
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    _refresh_live(ctx)
    return SitePublic.model_validate(await _get(conn, site.site_id, access))


@router.get("/{site_id}", response_model=SitePublic, responses=responses(404), summary="one site")
async def get_site(conn: ConnDep, access: OperatorScope, site_id: SiteId) -> SitePublic:
    return SitePublic.model_validate(await _get(conn, site_id, access))


@router.patch(
    "/{site_id}",
    response_model=SitePublic,
    responses=responses(404, 409),
    summary="change a site (only the fields sent)",
)
async def update_site(
    ctx: CtxDep, conn: ConnDep, access: OperatorScope, site_id: SiteId, change: SiteUpdate
) -> SitePublic:
    fields = change.model_dump(exclude_unset=True)
    for required in ("kind", "name", "params"):
        if required in fields and fields[required] is None:
            raise Problem(422, f"{required}: may not be null", title="Invalid request")
    if fields.get("parent_id") == site_id:
        raise Problem(422, "parent_id: a site cannot be its own parent", title="Invalid request")
    current = await _get(conn, site_id, access)
    if "parent_id" in fields:
        await _check_parent(conn, fields["parent_id"], current["tenant"])
    depth = fields.get("depth_mm", current["depth_mm"])
    full = fields.get("full_mm", current["full_mm"])
    if depth is not None and full is not None and full >= depth:
        raise Problem(422, "full_mm: must be less than depth_mm", title="Invalid request")
    try:
        await q.update_site(conn, site_id=site_id, fields=fields)
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    _refresh_live(ctx)
    return SitePublic.model_validate(await _get(conn, site_id, access))


@router.delete(
    "/{site_id}",
    status_code=204,
    responses=responses(404, 409),
    response_class=Response,
    summary="remove a site; with children (spaces of a lot, stops of a line) only with cascade=true",
)
async def delete_site(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    site_id: SiteId,
    cascade: Annotated[bool, Query(description="also remove the site's children")] = False,
) -> Response:
    await _get(conn, site_id, access)
    if not cascade and (n := await q.children(conn, site_id=site_id)):
        raise Problem(409, f"site {site_id!r} has {n} child sites; delete them first or pass cascade=true")
    await q.delete_site(conn, site_id=site_id)
    _refresh_live(ctx)
    return Response(status_code=204)
