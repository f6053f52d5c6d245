"""Devices (operator): list, get, create, update, delete, bulk import; last uplinks, open gaps and radio health."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Path, Query, Request, Response

from stadtpuls import fleet
from stadtpuls.ingest.codecs import all_codecs

from ..deps import ConnDep, CtxDep, OperatorKey
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
from ..problems import Problem, integrity_problem, responses
from ..queries import devices as q

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
        raise Problem(
            422,
            f"codec: unknown codec {codec!r}",
            title="Invalid request",
            errors=[{"loc": ["body", "codec"], "msg": "unknown codec", "type": "value_error"}],
        )


async def _get(conn: psycopg.AsyncConnection, dev_eui: str) -> dict[str, Any]:
    row = await q.get_device(conn, dev_eui=dev_eui.lower())
    if row is None:
        raise Problem(404, f"no device {dev_eui.lower()}")
    return row


@router.get("", response_model=DevicesPublic, summary="devices, filtered and paginated")
async def list_devices(
    conn: ConnDep,
    _: OperatorKey,
    site_id: Annotated[str | None, Query(max_length=64)] = None,
    codec: Annotated[str | None, Query(max_length=100)] = None,
    q_: Annotated[str | None, Query(alias="q", max_length=100, description="part of name, DevEUI or LNS id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DevicesPublic:
    rows = await q.list_devices(conn, site_id=site_id, codec=codec, q=q_, limit=limit, offset=offset)
    total = await q.count_devices(conn, site_id=site_id, codec=codec, q=q_)
    return DevicesPublic.model_validate({"data": rows, "count": total})


@router.post("", response_model=DevicePublic, status_code=201, responses=responses(409), summary="add a device")
async def create_device(conn: ConnDep, _: OperatorKey, device: DeviceCreate) -> DevicePublic:
    await _check_codec(conn, device.codec)
    try:
        await q.insert_device(conn, fields=device.model_dump())
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    return DevicePublic.model_validate(await _get(conn, device.dev_eui))


@router.post(
    "/import",
    response_model=ImportReportPublic,
    summary="bulk import devices and sites (CSV or YAML)",
    responses=responses(413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}, "application/yaml": {"schema": {"type": "string"}}},
        }
    },
)
async def import_devices(
    ctx: CtxDep,
    _: OperatorKey,
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
    url = ctx.settings.database_url.get_secret_value() if ctx.settings.database_url else ""

    def run() -> fleet.ImportReport:
        with psycopg.connect(url) as conn:
            return fleet.apply(conn, parsed, dry_run=dry_run)

    report = await asyncio.to_thread(run)
    if not dry_run:
        for name in ("lots", "vehicles", "lines"):
            ctx.hub.topics[name].invalidate()
    return ImportReportPublic.model_validate(report.as_dict())


@router.get("/{dev_eui}", response_model=DevicePublic, responses=responses(404), summary="one device")
async def get_device(conn: ConnDep, _: OperatorKey, dev_eui: DevEui) -> DevicePublic:
    return DevicePublic.model_validate(await _get(conn, dev_eui))


@router.patch(
    "/{dev_eui}",
    response_model=DevicePublic,
    responses=responses(404, 409),
    summary="change a device (only the fields sent)",
)
async def update_device(conn: ConnDep, _: OperatorKey, dev_eui: DevEui, change: DeviceUpdate) -> DevicePublic:
    fields = change.model_dump(exclude_unset=True)
    for required in ("codec", "name", "report_interval_s", "params"):
        if required in fields and fields[required] is None:
            raise Problem(422, f"{required}: may not be null", title="Invalid request")
    await _check_codec(conn, fields.get("codec"))
    try:
        found = await q.update_device(conn, dev_eui=dev_eui.lower(), fields=fields)
    except psycopg.IntegrityError as e:
        raise integrity_problem(e) from None
    if not found:
        raise Problem(404, f"no device {dev_eui.lower()}")
    return DevicePublic.model_validate(await _get(conn, dev_eui))


@router.delete(
    "/{dev_eui}",
    status_code=204,
    responses=responses(404),
    response_class=Response,
    summary="remove a device (its stored readings stay)",
)
async def delete_device(conn: ConnDep, _: OperatorKey, dev_eui: DevEui) -> Response:
    if not await q.delete_device(conn, dev_eui=dev_eui.lower()):
        raise Problem(404, f"no device {dev_eui.lower()}")
    return Response(status_code=204)


@router.get(
    "/{dev_eui}/uplinks",
    response_model=DeviceUplinksPublic,
    responses=responses(404),
    summary="a device's last uplinks, newest first",
)
async def device_uplinks(
    conn: ConnDep, _: OperatorKey, dev_eui: DevEui, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> DeviceUplinksPublic:
    await _get(conn, dev_eui)
    rows = await q.uplinks(conn, dev_eui=dev_eui.lower(), limit=limit)
    return DeviceUplinksPublic.model_validate({"dev_eui": dev_eui.lower(), "data": rows, "count": len(rows)})


@router.get(
    "/{dev_eui}/gaps",
    response_model=DeviceGapsPublic,
    responses=responses(404),
    summary="a device's frame-counter gaps still open, newest first",
)
async def device_gaps(
    conn: ConnDep, _: OperatorKey, dev_eui: DevEui, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> DeviceGapsPublic:
    device = await _get(conn, dev_eui)
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
async def device_radio(conn: ConnDep, _: OperatorKey, dev_eui: DevEui) -> DeviceRadio:
    device = await _get(conn, dev_eui)
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
