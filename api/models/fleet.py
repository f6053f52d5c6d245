"""Device and site models: the ``*Public`` answers and the ``*Create`` / ``*Update`` request bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from stadtpuls.fleet import LOT_TYPES, PARK_AND_RIDE, PURPOSES, check_text, opening_hours_problem
from stadtpuls.tenants import SLUG_PATTERN

__all__ = [
    "DeviceCreate",
    "DevicePublic",
    "DeviceRadio",
    "DeviceUpdate",
    "DeviceUplink",
    "DeviceUplinksPublic",
    "DevicesPublic",
    "ImportError_",
    "ImportReportPublic",
    "SiteCreate",
    "SiteKind",
    "SiteOpenData",
    "SitePublic",
    "SiteUpdate",
    "SitesPublic",
]

SiteKind = Literal["bin", "lot", "space", "line", "vehicle", "stop", "station"]
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"
DEV_EUI_PATTERN = r"^[0-9a-fA-F]{16}$"
#: a new site's or device's town: only a hub admin key without a town prefix chooses it
NewTenant = Annotated[
    str | None,
    Field(
        pattern=SLUG_PATTERN,
        description="the town (tenant slug) of the new row; only a hub admin key without a town prefix chooses "
        "it (default: `default`), otherwise it is the caller's town",
    ),
]


#: free text of the registry: no control characters (see :func:`stadtpuls.fleet.check_text`)
Text = Annotated[str, AfterValidator(check_text)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceFields(_Body):
    codec: Text = Field(min_length=1, max_length=100, description="TTN Device Repository id, e.g. dragino/ldds75")
    name: Text = Field("", max_length=200)
    site_id: str | None = Field(None, pattern=ID_PATTERN)
    lns_device_id: Text | None = Field(None, min_length=1, max_length=100)
    lns_application_id: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[^/#+@\s]+(@[^/#+@\s]+)?$",
        description="network-server application (TTS `app` or `app@tenant`, ChirpStack application id); "
        "uplinks naming another are refused",
    )
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    report_interval_s: int = Field(3600, gt=0, le=30 * 86400)
    params: dict[str, Any] = Field(default_factory=dict)


class DeviceCreate(DeviceFields):
    dev_eui: str = Field(pattern=DEV_EUI_PATTERN)
    tenant: NewTenant = None

    @field_validator("dev_eui")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


class DeviceUpdate(_Body):
    codec: Text | None = Field(None, min_length=1, max_length=100)
    name: Text | None = Field(None, max_length=200)
    site_id: str | None = Field(None, pattern=ID_PATTERN)
    lns_device_id: Text | None = Field(None, min_length=1, max_length=100)
    lns_application_id: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[^/#+@\s]+(@[^/#+@\s]+)?$",
        description="network-server application (TTS `app` or `app@tenant`, ChirpStack application id); "
        "uplinks naming another are refused",
    )
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    report_interval_s: int | None = Field(None, gt=0, le=30 * 86400)
    params: dict[str, Any] | None = None


class DevicePublic(BaseModel):
    dev_eui: str
    codec: str
    name: str
    site_id: str | None
    lns_device_id: str | None
    lns_application_id: str | None = None
    lat: float | None
    lon: float | None
    report_interval_s: int
    params: dict[str, Any]
    tenant: str = Field(description="the town (tenant slug) the device belongs to")
    created_at: datetime
    updated_at: datetime
    last_seen: datetime | None = None


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int = Field(description="devices matching the filter (all pages)")


class DeviceUplink(BaseModel):
    time: datetime
    f_cnt: int | None
    f_port: int | None
    payload_hex: str | None
    rssi: float | None
    snr: float | None
    dr: int | None
    sf: int | None
    frequency: int | None
    gateways: int
    gateway_id: str | None
    lns: str
    received_at: datetime


class DeviceUplinksPublic(BaseModel):
    dev_eui: str
    data: list[DeviceUplink]
    count: int


class FcntGap(BaseModel):
    time: datetime = Field(description="reading time of the uplink after the gap")
    f_cnt_from: int
    f_cnt_to: int
    missing: int
    detected_at: datetime


class DeviceGapsPublic(BaseModel):
    """Frame-counter gaps still open (no uplink, live or backfilled, has filled them), newest first."""

    dev_eui: str
    data: list[FcntGap]
    count: int
    closed_f_cnt_24h: int = Field(description="counters of recorded gaps filled by late uplinks in the last 24 hours")


class DeviceRadio(BaseModel):
    """Radio health over the last 24 hours (hourly aggregates)."""

    dev_eui: str
    last_seen: datetime | None
    silent: bool = Field(description="no uplink for 2.5 times the report interval")
    uplinks_24h: int
    expected_24h: float = Field(description="86400 / report_interval_s")
    missing_f_cnt_24h: int = Field(description="frame counters recorded as gaps in the last 24 hours")
    rssi_avg: float | None
    rssi_min: float | None
    snr_avg: float | None


LotType = Literal[LOT_TYPES]  # type: ignore[valid-type]
Purpose = Literal[PURPOSES]  # type: ignore[valid-type]
ParkAndRide = Literal[PARK_AND_RIDE]  # type: ignore[valid-type]


class SiteOpenData(BaseModel):
    """The static facts the open-data feeds need (lots: ParkAPI v3 / DATEX II; vehicles and lines: GTFS-Realtime)."""

    lot_type: LotType | None = Field(None, description="lot: ParkAPI v3 type (ON_STREET, CAR_PARK, ...)")
    purpose: Purpose | None = Field(None, description="lot: ParkAPI v3 purpose (default CAR)")
    park_and_ride: list[ParkAndRide] | None = Field(None, max_length=6, description="lot: ParkAPI v3 P+R types")
    address: str | None = Field(None, max_length=512, description="lot: {street and number}, {postcode} {town}")
    opening_hours: str | None = Field(None, max_length=512, description="lot: OpenStreetMap opening_hours")
    has_fee: bool | None = None
    fee_description: str | None = Field(None, max_length=4096)
    operator_name: str | None = Field(None, max_length=256)
    public_url: str | None = Field(None, max_length=4096, pattern=r"^https?://\S+$")
    seated_capacity: int | None = Field(None, ge=0, le=10_000, description="vehicle: seats")
    standing_capacity: int | None = Field(None, ge=0, le=10_000, description="vehicle: standing places")
    gtfs_route_id: str | None = Field(None, min_length=1, max_length=255, description="line: the GTFS route_id")

    @field_validator("opening_hours")
    @classmethod
    def _osm_hours(cls, v: str | None) -> str | None:
        if v is not None and (problem := opening_hours_problem(v)):
            raise ValueError(problem)
        return v


class SiteFields(SiteOpenData, _Body):
    kind: SiteKind
    name: Text = Field("", max_length=200)
    parent_id: str | None = Field(None, pattern=ID_PATTERN)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    waste_type: Text | None = Field(None, max_length=50)
    depth_mm: int | None = Field(None, gt=0, le=100_000)
    full_mm: int | None = Field(None, ge=0, le=100_000)
    volume_l: int | None = Field(None, gt=0, le=1_000_000)
    threshold_pct: float | None = Field(None, ge=0, le=100)
    capacity: int | None = Field(None, ge=0, le=1_000_000)
    seq: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    params: dict[str, Any] = Field(default_factory=dict)


class SiteCreate(SiteFields):
    site_id: str = Field(pattern=ID_PATTERN)
    tenant: NewTenant = None


class SiteUpdate(SiteOpenData, _Body):
    kind: SiteKind | None = None
    name: Text | None = Field(None, max_length=200)
    parent_id: str | None = Field(None, pattern=ID_PATTERN)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    waste_type: Text | None = Field(None, max_length=50)
    depth_mm: int | None = Field(None, gt=0, le=100_000)
    full_mm: int | None = Field(None, ge=0, le=100_000)
    volume_l: int | None = Field(None, gt=0, le=1_000_000)
    threshold_pct: float | None = Field(None, ge=0, le=100)
    capacity: int | None = Field(None, ge=0, le=1_000_000)
    seq: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    params: dict[str, Any] | None = None


class SitePublic(SiteOpenData):
    site_id: str
    public_id: int = Field(description="the site's integer id in the open-data feeds (ParkAPI id)")
    kind: SiteKind
    name: str
    parent_id: str | None
    lat: float | None
    lon: float | None
    waste_type: str | None
    depth_mm: int | None
    full_mm: int | None
    volume_l: int | None
    threshold_pct: float | None
    capacity: int | None
    seq: int | None
    params: dict[str, Any]
    tenant: str = Field(description="the town (tenant slug) the site belongs to")
    created_at: datetime
    updated_at: datetime


class SitesPublic(BaseModel):
    data: list[SitePublic]
    count: int = Field(description="sites matching the filter (all pages)")


class ImportError_(BaseModel):
    section: str
    row: int
    field: str
    message: str


class ImportReportPublic(BaseModel):
    sites_created: int
    sites_updated: int
    devices_created: int
    devices_updated: int
    codecs_updated: int = Field(0, description="script codecs whose readings map was set")
    unchanged: int
    dry_run: bool
    errors: list[ImportError_]
