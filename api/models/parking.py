"""Parking response models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["GeoJSONFeatureCollection", "LotHistoryPublic", "LotPublic", "LotsPublic", "OccupancyBucket"]


class LotPublic(BaseModel):
    """A lot now. ``unknown`` counts spaces without a sensor heard within 2.5 times its heartbeat (and spaces
    without a sensor), so ``free + occupied + unknown == capacity``. ``stale``: fewer than half of the lot's
    sensors are heard (or it has none)."""

    lot_id: str
    name: str
    capacity: int
    free: int
    occupied: int
    unknown: int
    updated_at: datetime | None = Field(description="time of the newest event of any of the lot's spaces")
    lat: float | None
    lon: float | None
    stale: bool


class LotsPublic(BaseModel):
    data: list[LotPublic]
    count: int


class OccupancyBucket(BaseModel):
    start: datetime = Field(description="bucket start, local time of the reporting time zone")
    end: datetime = Field(description="bucket end; now for the bucket still open")
    occupied: int = Field(description="occupied spaces at the end of the bucket")
    free: int = Field(description="free spaces at the end of the bucket")
    unknown: int = Field(description="spaces without a fresh reading at the end of the bucket")
    occupied_avg: float = Field(description="time-weighted mean of occupied spaces (space-seconds / seconds)")
    free_avg: float = Field(description="time-weighted mean of free spaces")
    free_min: int = Field(description="fewest free spaces at any moment of the bucket")


class LotHistoryPublic(BaseModel):
    lot_id: str
    bucket: Literal["15min", "hour", "day"]
    timezone: str
    capacity: int
    data: list[OccupancyBucket]
    count: int


class GeoJSONFeatureCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
