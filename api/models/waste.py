"""Waste response models."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "BinFlags",
    "BinHistoryPoint",
    "BinHistoryPublic",
    "BinPublic",
    "BinsPublic",
    "PickupPlanPublic",
    "PickupStop",
]


class BinFlags(BaseModel):
    battery_low: bool
    silent: bool = Field(description="no reading for 2.5 times the sensor's report interval")
    over_threshold: bool


class BinPublic(BaseModel):
    site_id: str
    name: str
    waste_type: str | None
    lat: float | None
    lon: float | None
    dev_eui: str | None
    threshold_pct: float
    fill_pct: float | None = Field(description="fitted fill level now (robust fit since the last emptying)")
    last_fill_pct: float | None = Field(description="the last reading as sent")
    last_reading_at: dt.datetime | None
    rate_per_day: float | None = Field(description="fill percentage points per day")
    predicted_full_at: dt.datetime | None = Field(description="when the threshold is (or was) reached")
    emptied_at: dt.datetime | None = Field(description="first reading after the last detected emptying")
    battery_v: float | None
    battery_pct: float | None
    flags: BinFlags


class BinsPublic(BaseModel):
    data: list[BinPublic]
    count: int


class BinHistoryPoint(BaseModel):
    time: dt.datetime = Field(description="reading time, or bucket start in the reporting time zone")
    fill_pct: float | None
    fill_min: float | None = None
    fill_max: float | None = None
    battery_v: float | None = None
    readings: int = 1


class BinHistoryPublic(BaseModel):
    site_id: str
    bucket: Literal["raw", "hour", "day"]
    data: list[BinHistoryPoint]
    count: int


class PickupStop(BaseModel):
    seq: int = Field(description="position in the route, 1 = first after the depot")
    site_id: str
    name: str
    waste_type: str | None
    lat: float
    lon: float
    fill_pct: float = Field(description="fitted fill when the plan was made")
    expected_fill_pct: float = Field(description="predicted fill at arrival")
    threshold_pct: float
    rate_per_day: float
    predicted_full_at: dt.datetime | None
    arrival: dt.datetime
    leg_km: float
    reason: Literal["over_threshold", "predicted"]


class PickupPlanPublic(BaseModel):
    date: dt.date
    next_service_date: dt.date
    start: dt.datetime = Field(description="start of the round at the depot")
    as_of: dt.datetime = Field(description="bin levels known up to this instant")
    depot: dict[str, float]
    distance_km: float
    solver: str
    bins_considered: int
    data: list[PickupStop]
    count: int
