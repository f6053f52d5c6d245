"""API keys (admin): list, create (the key is shown once), revoke.

A key belongs to a town (tenant): an operator key sees and changes only that town's rows; an admin key is the
hub's and sees every town. Under a town prefix (``/api/v1/t/{slug}/keys``) the routes list, create and revoke
that town's keys only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ..auth import new_key
from ..deps import AdminScope, ConnDep
from ..models.ops import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from ..problems import Problem, invalid_body, responses
from ..queries import keys as q

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=responses(401, 403, 422))


@router.get("", response_model=KeysPublic, summary="API keys with their towns (never the keys themselves)")
async def list_keys(conn: ConnDep, access: AdminScope) -> KeysPublic:
    rows = await q.list_keys(conn, tenant=access.tenant)
    return KeysPublic.model_validate({"data": rows, "count": len(rows)})


@router.post(
    "",
    response_model=KeyCreated,
    status_code=201,
    summary="create a key; the answer is the only time it is shown",
    description="The key belongs to `tenant` (a town that exists; 422 otherwise), by default the town of the "
    "path's `/t/{slug}` prefix, else `default`. An operator key sees only its town's rows; an admin key is the "
    "hub's whatever its town.",
)
async def create_key(conn: ConnDep, access: AdminScope, body: KeyCreate) -> KeyCreated:
    tenant = access.owner(body.tenant)
    if not await q.tenant_exists(conn, slug=tenant):
        raise invalid_body("tenant", f"no town {tenant!r} on this hub", "no such town")
    key = new_key()
    row = await q.insert_key(
        conn, key_id=key.key_id, name=body.name, role=body.role, key_hash=key.key_hash, tenant=tenant
    )
    return KeyCreated.model_validate({**row, "key": key.key})


@router.delete("/{key_id}", response_model=KeyPublic, responses=responses(404), summary="revoke a key")
async def revoke_key(
    conn: ConnDep, access: AdminScope, key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]
) -> KeyPublic:
    row = await q.revoke_key(conn, key_id=key_id, tenant=access.tenant)
    if row is None:
        raise Problem(404, f"no active key {key_id!r}")
    return KeyPublic.model_validate(row)
