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
    fill_avg: float | None = Field(None, description="buckets: the mean of the readings' fill levels")
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
    departure: dt.datetime
    leg_km: float
    load_l: float = Field(description="bin litres on the truck after this stop")
    truck: str = Field(description="the truck that empties the bin; seq counts within its route")
    reason: Literal["pinned", "over_threshold", "predicted", "district", "on_the_way"]
    note: str = Field(description="why the bin is in the plan, for the crew and the operator")


class PickupVisit(BaseModel):
    kind: Literal["depot", "bin", "disposal"]
    name: str
    lat: float
    lon: float
    arrival: dt.datetime
    departure: dt.datetime


class PickupTruck(BaseModel):
    truck: str
    fraction: str
    start: dt.datetime
    end: dt.datetime
    distance_km: float
    bins: int
    unloads: int
    visits: list[PickupVisit] = Field(description="depot, bins and disposal sites in driving order")


class DisposalSitePublic(BaseModel):
    name: str
    lat: float
    lon: float


class UnplannedBin(BaseModel):
    site_id: str
    reason: str
    note: str


class PickupPlanPublic(BaseModel):
    date: dt.date
    next_service_date: dt.date
    start: dt.datetime = Field(description="start of the round at the depot")
    as_of: dt.datetime = Field(description="bin levels known up to this instant")
    depot: dict[str, float]
    disposal_sites: list[DisposalSitePublic]
    distance_km: float = Field(description="all trucks, depot to depot, disposal trips included")
    crew_hours: float
    solver: str
    distances: str = Field(description="where the km come from: a routing service or great-circle x road factor")
    bins_considered: int
    trucks: list[PickupTruck]
    skipped: list[str] = Field(description="bins the rules would take that the operator skipped")
    unplanned: list[UnplannedBin] = Field(description="chosen bins the fleet cannot serve within its shifts")
    data: list[PickupStop]
    count: int
