"""Response and request models, in families per resource (``LotPublic``, ``LotsPublic{data, count}``)."""

from __future__ import annotations

from .buses import LinePublic, LinesPublic, VehiclePublic, VehiclesPublic
from .fleet import DevicePublic, DevicesPublic, SitePublic, SitesPublic
from .opendata import ParkingSite, ParkingSites, ParkingSpot, ParkingSpots, Source, Sources
from .ops import DeadLetterPublic, DeadLettersPublic, HealthPublic
from .parking import LotPublic, LotsPublic
from .waste import BinPublic, BinsPublic, PickupPlanPublic

__all__ = [
    "BinPublic",
    "BinsPublic",
    "DeadLetterPublic",
    "DeadLettersPublic",
    "DevicePublic",
    "DevicesPublic",
    "HealthPublic",
    "LinePublic",
    "LinesPublic",
    "LotPublic",
    "LotsPublic",
    "ParkingSite",
    "ParkingSites",
    "ParkingSpot",
    "ParkingSpots",
    "PickupPlanPublic",
    "SitePublic",
    "SitesPublic",
    "Source",
    "Sources",
    "VehiclePublic",
    "VehiclesPublic",
]
