"""NGSI-LD entities of the Smart Data Models, built from the API's summaries (pure functions, no I/O).

=====================  ======================================  ================================================
type (Smart Data Model)  is                                    attributes
=====================  ======================================  ================================================
OffStreetParking       a lot (dataModel.Parking)               ``name``, ``location``, ``totalSpotNumber``,
                                                               ``availableSpotNumber``, ``occupancyDetectionType``
ParkingSpot            a sensored space (dataModel.Parking)    ``name``, ``location``, ``status`` (free, occupied,
                                                               unknown), ``refParkingSite``
WasteContainer         a bin (dataModel.WasteManagement)       ``name``, ``location``, ``fillingLevel`` (0..1),
                                                               ``storedWasteKind``
CrowdFlowObserved      the people on board a bus               ``name``, ``location`` (its last stop),
                       (dataModel.Transportation)              ``peopleCount``, ``dateObserved``
=====================  ======================================  ================================================

Ids are URNs ``urn:ngsi-ld:<type>:<site_id>``. Measured values carry ``observedAt`` (the reading time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["CONTEXT", "CORE_CONTEXT", "TYPES", "entity_id", "key_values", "lot", "space", "vehicle", "waste_container"]

#: the Smart Data Models' combined context (the core context is implied by NGSI-LD, and listed in bodies)
CONTEXT = "https://smart-data-models.github.io/data-models/context.jsonld"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
TYPES = ("OffStreetParking", "ParkingSpot", "WasteContainer", "CrowdFlowObserved")
#: stadtpuls waste types -> the model's storedWasteKind values
WASTE_KIND = {"residual": "other", "paper": "paper", "packaging": "plastic", "organic": "organic", "glass": "glass"}


def entity_id(kind: str, site_id: str) -> str:
    return f"urn:ngsi-ld:{kind}:{site_id}"


def _time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def prop(value: Any, observed: datetime | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Property", "value": value}
    if observed is not None:
        out["observedAt"] = _time(observed)
    return out


def _location(lat: float | None, lon: float | None) -> dict[str, Any]:
    if lat is None or lon is None:
        return {}
    return {"location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}}


def lot(row: Mapping[str, Any]) -> dict[str, Any]:
    """A lot summary (``queries.parking.lots``) as an ``OffStreetParking``."""
    return {
        "id": entity_id("OffStreetParking", row["lot_id"]),
        "type": "OffStreetParking",
        "name": prop(row["name"]),
        **_location(row["lat"], row["lon"]),
        "totalSpotNumber": prop(row["capacity"]),
        "availableSpotNumber": prop(row["free"], row["updated_at"]),
        "occupancyDetectionType": prop(["singleSpaceDetection"]),
    }


def space(row: Mapping[str, Any]) -> dict[str, Any]:
    """A space state (``queries.parking.spaces``) as a ``ParkingSpot``: unknown while its sensor is silent."""
    status = ("occupied" if row["occupied"] else "free") if row["fresh"] else "unknown"
    return {
        "id": entity_id("ParkingSpot", row["space_id"]),
        "type": "ParkingSpot",
        "name": prop(row["name"] or row["space_id"]),
        **_location(row["lat"], row["lon"]),
        "status": prop(status, row["updated_at"]),
        "refParkingSite": {"type": "Relationship", "object": entity_id("OffStreetParking", row["lot_id"])},
    }


def waste_container(row: Mapping[str, Any], last: Mapping[str, Any] | None) -> dict[str, Any]:
    """A bin (``queries.waste.bins``) and its newest reading as a ``WasteContainer``."""
    out: dict[str, Any] = {
        "id": entity_id("WasteContainer", row["site_id"]),
        "type": "WasteContainer",
        "name": prop(row["name"] or row["site_id"]),
        **_location(row["lat"], row["lon"]),
    }
    if row["waste_type"]:
        out["storedWasteKind"] = prop(WASTE_KIND.get(row["waste_type"], "other"))
    if last is not None and last["fill_pct"] is not None:
        level = min(max(round(float(last["fill_pct"]) / 100.0, 4), 0.0), 1.0)
        out["fillingLevel"] = prop(level, last["time"])
    return out


def vehicle(row: Mapping[str, Any], stop: Mapping[str, Any] | None) -> dict[str, Any]:
    """A bus (``queries.buses.vehicles``) as a ``CrowdFlowObserved`` of the people on board, at its last stop."""
    out: dict[str, Any] = {
        "id": entity_id("CrowdFlowObserved", row["vehicle_id"]),
        "type": "CrowdFlowObserved",
        "name": prop(row["name"] or row["vehicle_id"]),
        **_location(stop["lat"] if stop else None, stop["lon"] if stop else None),
    }
    if row["passengers"] is not None and row["updated_at"] is not None:
        out["peopleCount"] = prop(row["passengers"], row["updated_at"])
        out["dateObserved"] = prop({"@type": "DateTime", "@value": _time(row["updated_at"])})
    return out


def key_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The simplified representation (``options=keyValues``): each attribute as its value or object."""
    out: dict[str, Any] = {}
    for key, attr in entity.items():
        if isinstance(attr, dict) and attr.get("type") in ("Property", "GeoProperty"):
            out[key] = attr["value"]
        elif isinstance(attr, dict) and attr.get("type") == "Relationship":
            out[key] = attr["object"]
        else:
            out[key] = attr
    return out
