"""Helpers of the NGSI-LD tests: the Smart Data Models' attributes as a schema written from the published model
documentation, a checker, and a small seeded town."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apitest import Seeder, hours_ago


def _num(lo: float | None = None, hi: float | None = None) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, int | float) and not isinstance(v, bool) and (lo is None or v >= lo) and (hi is None or v <= hi)
    )


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _point(v: Any) -> bool:
    return v["type"] == "Point" and len(v["coordinates"]) == 2 and all(_num()(c) for c in v["coordinates"])


# attribute -> (NGSI-LD attribute type, value check, required), from the Smart Data Models' specs:
# dataModel.Parking OffStreetParking and ParkingSpot, dataModel.WasteManagement WasteContainer,
# dataModel.Transportation CrowdFlowObserved.
SCHEMA: dict[str, dict[str, tuple[str, Callable[[Any], bool], bool]]] = {
    "OffStreetParking": {
        "name": ("Property", _text, True),
        "location": ("GeoProperty", _point, True),
        "totalSpotNumber": ("Property", _num(0), True),
        "availableSpotNumber": ("Property", _num(0), True),
        "occupancyDetectionType": (
            "Property",
            lambda v: set(v) <= {"none", "balancing", "singleSpaceDetection", "modelBased", "manual"},
            True,
        ),
    },
    "ParkingSpot": {
        "name": ("Property", _text, True),
        "location": ("GeoProperty", _point, True),
        "status": ("Property", lambda v: v in ("closed", "free", "occupied", "unknown"), True),
        "refParkingSite": ("Relationship", lambda v: v.startswith("urn:ngsi-ld:OffStreetParking:"), True),
    },
    "WasteContainer": {
        "name": ("Property", _text, True),
        "location": ("GeoProperty", _point, True),
        "fillingLevel": ("Property", _num(0, 1), False),
        "storedWasteKind": (
            "Property",
            lambda v: (
                v
                in (
                    "organic",
                    "inorganic",
                    "glass",
                    "oil",
                    "plastic",
                    "metal",
                    "paper",
                    "batteries",
                    "electronics",
                    "hazardous",
                    "other",
                )
            ),
            False,
        ),
    },
    "CrowdFlowObserved": {
        "name": ("Property", _text, True),
        "location": ("GeoProperty", _point, False),
        "peopleCount": ("Property", _num(0), False),
        "dateObserved": ("Property", lambda v: v["@type"] == "DateTime" and _text(v["@value"]), False),
    },
}


def check(entity: dict[str, Any]) -> None:
    schema = SCHEMA[entity["type"]]
    assert entity["id"].startswith(f"urn:ngsi-ld:{entity['type']}:")
    extra = set(entity) - set(schema) - {"id", "type", "@context"}
    assert not extra, f"attributes not in the model: {extra}"
    for name, (kind, ok, required) in schema.items():
        if name not in entity:
            assert not required, (entity["id"], name)
            continue
        attr = entity[name]
        assert attr["type"] == kind, (entity["id"], name)
        assert ok(attr["object"] if kind == "Relationship" else attr["value"]), (entity["id"], name, attr)


def town(seed: Seeder) -> dict[str, Any]:
    spaces = seed.lot("lot-a", 3, lat=51.34, lon=12.37)
    seed.park(spaces[0], hours_ago(0.5), True)
    seed.park(spaces[1], hours_ago(0.5), False)  # the third is silent: unknown
    b = seed.bin("bin-1", lat=51.33, lon=12.38, waste_type="paper")
    seed.levels(b, [(hours_ago(3), 40.0), (hours_ago(2), 55.0), (hours_ago(1), 62.5)])
    seed.site("line-1", "line")
    seed.site("stop-1", "stop", parent_id="line-1", lat=51.35, lon=12.39, seq=1)
    seed.site("bus-1", "vehicle", parent_id="line-1", capacity=80)
    bus = seed.device("bus-1", codec="sensative/pax")
    seed.passengers(bus, hours_ago(0.2), pax_count=23, stop_id="stop-1")
    return {"spaces": spaces, "bin": b}
