"""API keys (admin): list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from ..auth import new_key
from ..deps import AdminKey, ConnDep
from ..models.ops import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from ..problems import Problem, responses
from ..queries import keys as q

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], responses=responses(401, 403, 422))


@router.get("", response_model=KeysPublic, summary="API keys (never the keys themselves)")
async def list_keys(conn: ConnDep, _: AdminKey) -> KeysPublic:
    rows = await q.list_keys(conn)
    return KeysPublic.model_validate({"data": rows, "count": len(rows)})


@router.post(
    "", response_model=KeyCreated, status_code=201, summary="create a key; the answer is the only time it is shown"
)
async def create_key(conn: ConnDep, _: AdminKey, body: KeyCreate) -> KeyCreated:
    key = new_key()
    row = await q.insert_key(conn, key_id=key.key_id, name=body.name, role=body.role, key_hash=key.key_hash)
    return KeyCreated.model_validate({**row, "key": key.key})


@router.delete("/{key_id}", response_model=KeyPublic, responses=responses(404), summary="revoke a key")
async def revoke_key(conn: ConnDep, _: AdminKey, key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]) -> KeyPublic:
    row = await q.revoke_key(conn, key_id=key_id)
    if row is None:
        raise Problem(404, f"no active key {key_id!r}")
    return KeyPublic.model_validate(row)
