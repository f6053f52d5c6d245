"""Devices (operator): list, get, create, update, delete, bulk import; last uplinks, open gaps and radio health.

Every route sees the devices of the caller's town only (an operator key's tenant, or the town of a ``/t/{slug}``
prefix for a hub admin key); another town's device is answered 404 like one that does not exist. A new or imported
device goes to the caller's town, and its site must be in the same town.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Path, Query, Request, Response

from stadtpuls import fleet
from stadtpuls.ingest.codecs import all_codecs

from ..deps import Access, ConnDep, CtxDep, OperatorScope
from ..models.fleet import (
    DeviceCreate,
    DeviceGapsPublic,
    DevicePublic,
    DeviceRadio,
    DevicesPublic,
    DeviceUpdate,
    DeviceUplinksPublic,
    ImportReportPublic,
)
from ..problems import Problem, integrity_problem, invalid_body, responses
from ..queries import devices as q
from ..queries import sites as sites_q

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=responses(401, 403, 422))
DevEui = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{16}$", description="16 hexadecimal digits")]
IMPORT_TYPES = {
    "text/csv": "csv",
    "application/yaml": "yaml",
    "application/x-yaml": "yaml",
    "text/yaml": "yaml",
    "application/json": "yaml",
}


async def _check_codec(conn: psycopg.AsyncConnection, codec: str | None) -> None:
    """A built-in codec or a stored script codec."""
    if codec is None or codec in all_codecs():
        return
    cur = await conn.execute("SELECT 1 FROM codec_scripts WHERE codec_id = %s LIMIT 1", (codec,))
    if await cur.fetchone() is None:
        raise invalid_body("codec", f"unknown codec {codec!r}", "unknown codec")


async def _get(conn: psycopg.AsyncConnection, dev_eui: str, access: Access) -> dict[str, Any]:
    row = await q.get_device(conn, dev_eui=dev_eui.lower(), tenant=access.tenant)
    if row is None:
        raise Problem(404, f"no device {dev_eui.lower()}")
    return row


async def _check_site(conn: psycopg.AsyncConnection, site_id: str | None, tenant: str) -> None:
    """A device's site must exist in the device's town (422 otherwise, the same answer for another town's)."""
    if site_id is not None and await sites_q.get_site(conn, site_id=site_id, tenant=tenant) is None:
        raise invalid_body("site_id", f"no site {site_id!r}", "no such site")


@router.get("", response_model=DevicesPublic, summary="devices, filtered and paginated")
async def list_devices(
    conn: ConnDep,
    access: OperatorScope,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    codec: Annotated[str | None, Query(max_length=100)] = None,
    q_: Annotated[str | None, Query(alias="q", max_length=100, description="part of name, DevEUI or LNS id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DevicesPublic:
    t = access.tenant
    rows = await q.list_devices(conn, tenant=t, site_id=site_id, codec=codec, q=q_, limit=limit, offset=offset)
    total = await q.count_devices(conn, tenant=t, site_id=site_id, codec=codec, q=q_)
    return DevicesPublic.model_validate({"data": rows, "count": total})


@router.post(
    "",
    response_model=DevicePublic,
    status_code=201,
    responses=responses(409),
    summary="add a device",
    description="The device goes to the caller's town: an operator key's tenant, or the town of the path's "
    "`/t/{slug}` prefix; a hub admin key without a prefix may name the `tenant` (default: `default`). DevEUIs "
    "are unique across the hub.",
)
async def create_device(conn: ConnDep, access: OperatorScope, device: DeviceCreate) -> DevicePublic:
    await _check_codec(conn, device.codec)
    tenant = access.owner(device.tenant)
    await _check_site(conn, device.site_id, tenant)
    try:
        await q.insert_device(conn, fields=device.model_dump(exclude={"tenant"}), tenant=tenant)
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    return DevicePublic.model_validate(await _get(conn, device.dev_eui, access))


@router.post(
    "/import",
    response_model=ImportReportPublic,
    summary="bulk import devices and sites (CSV or YAML)",
    description="Every site and device of the file goes to the caller's town (an operator key's tenant, the "
    "town of the path's `/t/{slug}` prefix, or for a hub admin key without a prefix `default`). A site id or "
    "DevEUI already used by another town is refused (422) and nothing of the file is applied; codec maps "
    "(`codecs:`) are the hub's and need a hub admin key (403).",
    responses=responses(403, 413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}, "application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def import_devices(
    ctx: CtxDep,
    access: OperatorScope,
    request: Request,
    dry_run: Annotated[bool, Query(description="validate and report without changing anything")] = False,
    format_: Annotated[
        Literal["csv", "yaml"] | None, Query(alias="format", description="default: from Content-Type")
    ] = None,
) -> ImportReportPublic:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = format_ or IMPORT_TYPES.get(ctype)
    if fmt is None:
        raise Problem(415, "send text/csv or application/yaml, or name the format with ?format=csv|yaml")
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(422, "the body is not UTF-8 text") from None
    try:
        parsed = fleet.parse_text(text, fmt, source="request body")
    except fleet.FleetError as e:
        raise Problem(422, str(e)) from None
    if parsed.codecs and not access.is_admin:
        raise Problem(403, "codecs: a codec's readings map is the hub's; changing it needs a hub admin key")
    url = ctx.settings.database_url.get_secret_value() if ctx.settings.database_url else ""
    tenant = access.owner()

    def run() -> fleet.ImportReport:
        with psycopg.connect(url) as conn:
            report = fleet.apply(conn, parsed, dry_run=dry_run, tenant=tenant)
        if report.refused:
            taken = "; ".join(e.message for e in report.errors)
            raise Problem(
                422,
                f"rows of another town (ids are unique across the hub; choose others, e.g. with a prefix): {taken};"
                " nothing was imported",
                title="Invalid request",
            )
        return report

    report = await asyncio.to_thread(run)
    if not dry_run:
        for name in ("lots", "vehicles", "lines"):
            ctx.hub.topics[name].invalidate()
    return ImportReportPublic.model_validate(report.as_dict())


@router.get("/{dev_eui}", response_model=DevicePublic, responses=responses(404), summary="one device")
async def get_device(conn: ConnDep, access: OperatorScope, dev_eui: DevEui) -> DevicePublic:
    return DevicePublic.model_validate(await _get(conn, dev_eui, access))


@router.patch(
    "/{dev_eui}",
    response_model=DevicePublic,
    responses=responses(404, 409),
    summary="change a device (only the fields sent)",
)
async def update_device(conn: ConnDep, access: OperatorScope, dev_eui: DevEui, change: DeviceUpdate) -> DevicePublic:
    fields = change.model_dump(exclude_unset=True)
    for required in ("codec", "name", "report_interval_s", "params"):
        if required in fields and fields[required] is None:
            raise Problem(422, f"{required}: may not be null", title="Invalid request")
    current = await _get(conn, dev_eui, access)
    await _check_codec(conn, fields.get("codec"))
    if "site_id" in fields:
        await _check_site(conn, fields["site_id"], current["tenant"])
    try:
        found = await q.update_device(conn, dev_eui=current["dev_eui"], fields=fields, tenant=access.tenant)
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    if not found:
        raise Problem(404, f"no device {dev_eui.lower()}")
    return DevicePublic.model_validate(await _get(conn, dev_eui, access))


@router.delete(
    "/{dev_eui}",
    status_code=204,
    responses=responses(404),
    response_class=Response,
    summary="remove a device (its stored readings stay)",
)
async def delete_device(conn: ConnDep, access: OperatorScope, dev_eui: DevEui) -> Response:
    if not await q.delete_device(conn, dev_eui=dev_eui.lower(), tenant=access.tenant):
        raise Problem(404, f"no device {dev_eui.lower()}")
    return Response(status_code=204)


@router.get(
    "/{dev_eui}/uplinks",
    response_model=DeviceUplinksPublic,
    responses=responses(404),
    summary="a device's last uplinks, newest first",
)
async def device_uplinks(
    conn: ConnDep, access: OperatorScope, dev_eui: DevEui, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> DeviceUplinksPublic:
    await _get(conn, dev_eui, access)
    rows = await q.uplinks(conn, dev_eui=dev_eui.lower(), limit=limit)
    return DeviceUplinksPublic.model_validate({"dev_eui": dev_eui.lower(), "data": rows, "count": len(rows)})


@router.get(
    "/{dev_eui}/gaps",
    response_model=DeviceGapsPublic,
    responses=responses(404),
    summary="a device's frame-counter gaps still open, newest first",
)
async def device_gaps(
    conn: ConnDep, access: OperatorScope, dev_eui: DevEui, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> DeviceGapsPublic:
    device = await _get(conn, dev_eui, access)
    rows, closed = await q.open_gaps(conn, dev_eui=device["dev_eui"], limit=limit)
    return DeviceGapsPublic.model_validate(
        {"dev_eui": device["dev_eui"], "data": rows, "count": len(rows), "closed_f_cnt_24h": closed}
    )


@router.get(
    "/{dev_eui}/radio",
    response_model=DeviceRadio,
    responses=responses(404),
    summary="radio health over 24 hours: uplinks, RSSI/SNR, frame-counter gaps, last seen",
)
async def device_radio(conn: ConnDep, access: OperatorScope, dev_eui: DevEui) -> DeviceRadio:
    device = await _get(conn, dev_eui, access)
    stats = await q.radio(conn, dev_eui=device["dev_eui"])
    interval = int(device["report_interval_s"])
    last = stats["last_seen"]
    cur = await conn.execute("SELECT now()")
    now_row = await cur.fetchone()
    assert now_row is not None
    silent = last is None or (now_row[0] - last).total_seconds() > 2.5 * interval
    return DeviceRadio.model_validate(
        {**stats, "dev_eui": device["dev_eui"], "silent": silent, "expected_24h": round(86400 / interval, 2)}
    )
