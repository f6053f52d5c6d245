"""Open-data answers as their standards define them: ParkAPI v3 parking sites, spots and sources, the DATEX II
parking publication light (its outline) and the GTFS-Realtime feed's JSON form (its outline). These models
document the routes; the routes serve the feeds' cached bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stadtpuls.fleet import LOT_TYPES, PARK_AND_RIDE, PURPOSES

__all__ = [
    "Datex2Publication",
    "GtfsRtFeedJson",
    "ParkingSite",
    "ParkingSites",
    "ParkingSpot",
    "ParkingSpots",
    "Source",
    "Sources",
]

LotType = Literal[LOT_TYPES]  # type: ignore[valid-type]
Purpose = Literal[PURPOSES]  # type: ignore[valid-type]
ParkAndRide = Literal[PARK_AND_RIDE]  # type: ignore[valid-type]
OpeningStatus = Literal["OPEN", "CLOSED", "UNKNOWN"]
SpotStatus = Literal["AVAILABLE", "TAKEN", "UNKNOWN"]


class _Listing(BaseModel):
    total_count: int = Field(ge=0, description="items matching the filters, on every page")
    next_id: int | None = Field(None, description="start of the next page (only on a full page)")
    next_path: str | None = Field(None, description="path and query of the next page")


class ParkingSite(BaseModel):
    """A lot as a ParkAPI v3 parking site."""

    id: int = Field(description="the site's integer id (registry public_id)")
    source_id: int
    original_uid: str = Field(max_length=256, description="the lot's site_id")
    name: str = Field(max_length=256)
    type: LotType
    purpose: Purpose
    lat: float
    lon: float
    capacity: int = Field(ge=0)
    address: str | None = None
    operator_name: str | None = None
    public_url: str | None = None
    fee_description: str | None = None
    has_fee: bool | None = None
    opening_hours: str | None = Field(None, description="OpenStreetMap opening_hours")
    park_and_ride_type: list[ParkAndRide] | None = None
    has_realtime_data: bool = Field(description="false when the newest reading is older than 30 minutes")
    realtime_opening_status: OpeningStatus
    realtime_data_updated_at: str | None = None
    realtime_capacity: int | None = Field(None, ge=0)
    realtime_free_capacity: int | None = Field(None, ge=0, description="free spaces (silent sensors are not free)")
    static_data_updated_at: str
    created_at: str
    modified_at: str


class ParkingSites(_Listing):
    items: list[ParkingSite]


class ParkingSpot(BaseModel):
    """A space as a ParkAPI v3 parking spot."""

    id: int
    source_id: int
    parking_site_id: int
    original_uid: str = Field(max_length=256)
    name: str | None = None
    purpose: Purpose
    lat: float
    lon: float
    has_realtime_data: bool
    realtime_status: SpotStatus
    realtime_data_updated_at: str | None = None
    static_data_updated_at: str
    created_at: str
    modified_at: str


class ParkingSpots(_Listing):
    items: list[ParkingSpot]


class Source(BaseModel):
    id: int
    uid: str
    name: str
    public_url: str
    attribution_license: str | None = None
    static_status: Literal["ACTIVE", "PROVISIONED"]
    realtime_status: Literal["ACTIVE", "PROVISIONED"]
    static_data_updated_at: str | None = None
    realtime_data_updated_at: str | None = None
    created_at: str | None = None
    modified_at: str | None = None


class Sources(_Listing):
    items: list[Source]


class Datex2PublicationLight(BaseModel):
    model_config = ConfigDict(extra="allow")

    lang: str
    name: str
    publicationTime: str  # noqa: N815 - the DATEX II element name
    parkingSite: list[dict[str, Any]]  # noqa: N815
    parkingSpace: list[dict[str, Any]]  # noqa: N815


class Datex2Publication(BaseModel):
    """DATEX II v3 parking publication light, JSON encoding (XML attributes with a leading underscore)."""

    model_config = ConfigDict(populate_by_name=True)

    version: str = Field(alias="_version")
    modelBaseVersion: str = Field(alias="_modelBaseVersion")  # noqa: N815
    parkingPublicationLight: Datex2PublicationLight  # noqa: N815


class GtfsRtFeedJson(BaseModel):
    """The GTFS-Realtime FeedMessage as JSON (protobuf field names)."""

    model_config = ConfigDict(extra="allow")

    header: dict[str, Any]
    entity: list[dict[str, Any]] = Field(default_factory=list)
