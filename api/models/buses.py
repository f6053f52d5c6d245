"""Bus response models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "LineLoad",
    "LineLoadPublic",
    "BusStop",
    "BusStopsPublic",
    "LineHourly",
    "LineHourlyPublic",
    "LinePublic",
    "LinesPublic",
    "VehiclePublic",
    "VehiclesPublic",
]


class VehiclePublic(BaseModel):
    """A vehicle now. ``passengers`` is boardings minus alightings since the start of the local day, never below
    zero (door counter), or the Paxcounter's count when the vehicle has no door counter."""

    vehicle_id: str
    name: str
    line_id: str | None
    capacity: int | None
    passengers: int | None
    occupancy_pct: float | None = Field(description="passengers as % of capacity")
    source: Literal["door_counter", "paxcounter"] | None
    stop_id: str | None = Field(description="stop of the latest count")
    stop_name: str | None
    updated_at: datetime | None
    in_service: bool = Field(description="counted within the last 30 minutes")


class VehiclesPublic(BaseModel):
    data: list[VehiclePublic]
    count: int


class LinePublic(BaseModel):
    """A line now: the sum over its vehicles in service."""

    line_id: str
    name: str
    vehicles: int = Field(description="vehicles in service")
    passengers: int
    capacity: int
    occupancy_pct: float | None
    updated_at: datetime | None


class LinesPublic(BaseModel):
    data: list[LinePublic]
    count: int


class LineHourly(BaseModel):
    hour: datetime = Field(description="hour start, local time of the reporting time zone")
    stop_id: str | None
    stop_name: str | None
    seq: int | None
    boardings: int
    alightings: int
    pax_count_max: int | None = Field(description="most people a Paxcounter saw in that hour")


class LineHourlyPublic(BaseModel):
    line_id: str
    timezone: str
    start: datetime
    end: datetime
    data: list[LineHourly]
    count: int


class LineLoad(BaseModel):
    start: datetime = Field(description="bucket start, local time of the reporting time zone")
    end: datetime = Field(description="bucket end; now for the bucket still open")
    on_board_avg: float = Field(description="time-weighted mean of people on board the line's vehicles")
    on_board: int = Field(description="people on board at the end of the bucket (vehicles with a fresh count)")
    vehicles: int = Field(description="vehicles with a fresh people count at the end of the bucket")
    boardings: int
    alightings: int


class LineLoadPublic(BaseModel):
    line_id: str
    bucket: Literal["15min", "hour", "day"]
    timezone: str
    data: list[LineLoad]
    count: int


class BusStop(BaseModel):
    stop_id: str
    name: str
    line_id: str | None = Field(description="the line the stop belongs to")
    seq: int | None = Field(description="order along the line")
    lat: float | None
    lon: float | None


class BusStopsPublic(BaseModel):
    data: list[BusStop]
    count: int
