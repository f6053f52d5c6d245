"""Tenant (town) models: ``TenantPublic`` and the ``TenantCreate`` / ``TenantUpdate`` bodies, checked as the
``tenants`` table's constraints (migration 0014) check them, and a time zone against the IANA database."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stadtpuls.fleet import check_text
from stadtpuls.tenants import COLOUR_PATTERN, LOGO_URL_PATTERN, SLUG_PATTERN

__all__ = ["Depot", "TenantCreate", "TenantPublic", "TenantUpdate", "TenantsPublic"]

_LOGO = re.compile(LOGO_URL_PATTERN)


def _zone(v: str | None) -> str | None:
    if v is not None:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
    return v


def _weekdays(v: list[int] | None) -> list[int] | None:
    if v is not None:
        if not v or any(d < 0 or d > 6 for d in v):
            raise ValueError("weekdays 0 (Monday) .. 6 (Sunday), at least one")
        return sorted(set(v))
    return v


def _logo(v: str | None) -> str | None:
    if v is not None and not _LOGO.match(v):
        raise ValueError("an https:// URL or a path starting with /, without spaces, quotes or angle brackets")
    return v


def _text(v: str | None) -> str | None:
    return check_text(v) if v is not None else v


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text)]
Zone = Annotated[str | None, Field(max_length=64, description="IANA time zone; null: STADTPULS_TIMEZONE")]
Days = Annotated[
    list[int] | None,
    Field(max_length=7, description="weekdays of collection rounds, 0 = Monday; null: STADTPULS_SERVICE_DAYS"),
]
Hour = Annotated[float | None, Field(ge=0, lt=24, description="local hour a collection round starts; null: the hub's")]
Brand = Annotated[str | None, Field(max_length=200, description="title of the town's public pages; null: its name")]
Logo = Annotated[str | None, Field(max_length=500, description="https:// URL or /path of the pages' logo")]
Colour = Annotated[str | None, Field(pattern=COLOUR_PATTERN, description="the pages' colour, #rrggbb")]


class Depot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_text)]
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


Depots = Annotated[
    list[Depot] | None,
    Field(max_length=50, description="waste depots; the first is where collection rounds start; null: the hub's"),
]


class _TownFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timezone: Annotated[Zone, AfterValidator(_zone)] = None
    depots: Depots = None
    service_days: Annotated[Days, AfterValidator(_weekdays)] = None
    pickup_start_hour: Hour = None
    brand_name: Annotated[Brand, AfterValidator(_text)] = None
    logo_url: Annotated[Logo, AfterValidator(_logo)] = None
    colour: Colour = None


class TenantCreate(_TownFields):
    slug: str = Field(pattern=SLUG_PATTERN, description="the town's id in URLs (/t/{slug}/...): a-z, 0-9, -")
    name: Name


class TenantUpdate(_TownFields):
    """The fields sent change; null clears a per-town field (the hub's setting applies again)."""

    name: Name | None = None


class TenantPublic(BaseModel):
    slug: str
    name: str
    timezone: str | None
    depots: list[dict[str, Any]] | None
    service_days: list[int] | None
    pickup_start_hour: float | None
    brand_name: str | None
    logo_url: str | None
    colour: str | None
    db_role: str | None = Field(description="the town's own database reader (its Grafana datasource)")
    created_at: datetime
    updated_at: datetime


class TenantsPublic(BaseModel):
    data: list[TenantPublic]
    count: int
