"""District response models: every town of the hub with its live figures."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["DistrictPublic", "TownBuses", "TownLinks", "TownParking", "TownPublic", "TownWaste"]


class TownParking(BaseModel):
    lots: int
    capacity: int
    free: int = Field(description="free spaces now (silent sensors are not free)")
    occupied: int
    updated_at: datetime | None


class TownBuses(BaseModel):
    lines: int
    vehicles_in_service: int = Field(description="buses heard within the last 30 minutes")
    passengers: int = Field(description="on board the buses in service")
    capacity: int = Field(description="of the buses in service")
    occupancy_pct: float | None


class TownWaste(BaseModel):
    bins: int
    over_threshold: int = Field(description="bins whose newest fill reading is at or over their threshold")


class TownLinks(BaseModel):
    parking: str
    buses: str
    api: str = Field(description="the town's JSON API, e.g. {api}/parking/lots")


class TownPublic(BaseModel):
    slug: str
    name: str
    title: str = Field(description="what the town's pages are called (brand name, else name)")
    logo_url: str | None
    colour: str | None
    parking: TownParking
    buses: TownBuses
    waste: TownWaste
    links: TownLinks


class DistrictPublic(BaseModel):
    data: list[TownPublic]
    count: int
