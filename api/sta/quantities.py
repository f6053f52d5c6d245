"""The quantities the hub stores, as SensorThings ObservedProperties: each reading-table column's name, definition,
unit of measurement (the UCUM code as ``symbol``, a QUDT unit as ``definition``) and observation type.

The ids are public (part of every Datastream id, :data:`.entities.DATASTREAM_FACTOR`): append, never renumber.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["OM", "QUANTITIES", "QUANTITY_BY_ID", "Quantity"]

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
QUDT_UNIT = "http://qudt.org/vocab/unit/"
QUDT_KIND = "http://qudt.org/vocab/quantitykind/"
SDM = "https://smartdatamodels.org/"


@dataclass(frozen=True)
class Quantity:
    """An ObservedProperty, with the unit (UCUM code as ``symbol``) and observation type of its Datastreams."""

    id: int
    name: str
    definition: str
    description: str
    unit_name: str | None
    unit_symbol: str | None  # UCUM code
    unit_definition: str | None
    observation_type: str = OM + "OM_Measurement"

    @property
    def unit(self) -> dict[str, str | None]:
        return {"name": self.unit_name, "symbol": self.unit_symbol, "definition": self.unit_definition}

    @property
    def is_truth(self) -> bool:
        return self.observation_type.endswith("OM_TruthObservation")

    @property
    def is_count(self) -> bool:
        return self.observation_type.endswith("OM_CountObservation")


_PERCENT = ("percent", "%", QUDT_UNIT + "PERCENT")
_COUNT = OM + "OM_CountObservation"
#: reading-table column -> quantity; ids are public (in Datastream ids): append, never renumber
QUANTITIES: Mapping[str, Quantity] = {
    "fill_pct": Quantity(
        1, "fill level", SDM + "dataModel.WasteManagement/fillingLevel", "How full a waste container is", *_PERCENT
    ),
    "distance_mm": Quantity(
        2,
        "distance to fill surface",
        QUDT_KIND + "Distance",
        "Distance from the ultrasonic sensor to the surface of the waste",
        "millimetre",
        "mm",
        QUDT_UNIT + "MilliM",
    ),
    "temperature_c": Quantity(
        3,
        "temperature",
        QUDT_KIND + "Temperature",
        "Air temperature at the sensor",
        "degree Celsius",
        "Cel",
        QUDT_UNIT + "DEG_C",
    ),
    "battery_v": Quantity(
        4, "battery voltage", QUDT_KIND + "Voltage", "Voltage of the device's battery", "volt", "V", QUDT_UNIT + "V"
    ),
    "battery_pct": Quantity(
        5, "battery level", SDM + "dataModel.Device/batteryLevel", "Charge left in the device's battery", *_PERCENT
    ),
    "occupied": Quantity(
        6,
        "occupancy",
        SDM + "dataModel.Parking/ParkingSpot",
        "Whether a vehicle stands on the parking space",
        None,
        None,
        None,
        OM + "OM_TruthObservation",
    ),
    "pax_in": Quantity(
        7,
        "passengers boarding",
        QUDT_KIND + "Count",
        "Passengers who boarded at the stop",
        "passengers",
        "{passengers}",
        QUDT_UNIT + "NUM",
        _COUNT,
    ),
    "pax_out": Quantity(
        8,
        "passengers alighting",
        QUDT_KIND + "Count",
        "Passengers who left at the stop",
        "passengers",
        "{passengers}",
        QUDT_UNIT + "NUM",
        _COUNT,
    ),
    "pax_count": Quantity(
        9,
        "passengers on board",
        QUDT_KIND + "Count",
        "People on board the vehicle",
        "passengers",
        "{passengers}",
        QUDT_UNIT + "NUM",
        _COUNT,
    ),
    "humidity_pct": Quantity(
        10, "relative humidity", QUDT_KIND + "RelativeHumidity", "Relative humidity of the air", *_PERCENT
    ),
    "co2_ppm": Quantity(
        11,
        "carbon dioxide",
        SDM + "dataModel.Environment/AirQualityObserved",
        "CO2 concentration in the air",
        "parts per million",
        "[ppm]",
        QUDT_UNIT + "PPM",
    ),
    "light_lux": Quantity(
        12, "illuminance", QUDT_KIND + "Illuminance", "Light falling on the sensor", "lux", "lx", QUDT_UNIT + "LUX"
    ),
    "motion": Quantity(
        13,
        "motion events",
        QUDT_KIND + "Count",
        "Movements the sensor counted since its last uplink",
        "events",
        "{events}",
        QUDT_UNIT + "NUM",
        _COUNT,
    ),
}
QUANTITY_BY_ID: Mapping[int, Quantity] = {q.id: q for q in QUANTITIES.values()}
