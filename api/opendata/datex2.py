"""DATEX II v3 parking publication light in its JSON encoding, as ParkAPI serves it (``/api/public/datex2/json``).

A view over the ParkAPI parking sites and spots of :mod:`.parkapi` (the same numbers and times at the same instant):

* ``parkingSite``: ``_id`` (the ParkAPI ``id``), ``name``, ``type`` (DATEX ``carPark``, ``onStreet``,
  ``offStreetParkingGround`` or ``other``), ``locationAndDimension.coordinatesForDisplay`` (WGS 84 degrees),
  ``numberOfSpaces``, ``availableSpaces`` (ParkAPI ``realtime_free_capacity``), ``lastUpdate`` (the realtime update,
  else the static one), ``isOpenNow`` (from ``realtime_opening_status``; absent when unknown), and from the
  registry ``openingTimesDescription``, ``tariffDescription``, ``freeParking``, ``operatorInformation``,
  ``urlLinkAddress``;
* ``parkingSpace``: with ``spaces``, every single space: ``_id``, ``locationAndDimension``, ``availability``
  (``available`` / ``occupied`` / ``unknown``), ``lastUpdate``; empty by default, as ParkAPI publishes it (a
  town's thousands of spaces would make every poll of the lots heavy).

XML attributes carry a leading underscore (``_id``, ``_version``), as in DATEX II's JSON encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["MODEL_BASE_VERSION", "VERSION", "publication"]

VERSION = "3.4"
MODEL_BASE_VERSION = "3"
SITE_TYPES = {
    "CAR_PARK": "carPark",
    "UNDERGROUND": "carPark",
    "ON_STREET": "onStreet",
    "OFF_STREET_PARKING_GROUND": "offStreetParkingGround",
}
AVAILABILITY = {"AVAILABLE": "available", "TAKEN": "occupied", "UNKNOWN": "unknown"}


def _location(item: dict[str, Any]) -> dict[str, Any]:
    return {"coordinatesForDisplay": {"latitude": item["lat"], "longitude": item["lon"]}}


def _site(s: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "_id": str(s["id"]),
        "name": s["name"],
        "type": SITE_TYPES.get(s["type"], "other"),
        "locationAndDimension": _location(s),
        "numberOfSpaces": s.get("realtime_capacity", s["capacity"]),
        "lastUpdate": s.get("realtime_data_updated_at", s["static_data_updated_at"]),
    }
    if "realtime_free_capacity" in s:
        out["availableSpaces"] = s["realtime_free_capacity"]
    if s["realtime_opening_status"] != "UNKNOWN":
        out["isOpenNow"] = s["realtime_opening_status"] == "OPEN"
    if "opening_hours" in s:
        out["openingTimesDescription"] = [s["opening_hours"]]
    if "fee_description" in s:
        out["tariffDescription"] = [s["fee_description"]]
    if "has_fee" in s:
        out["freeParking"] = not s["has_fee"]
    if "operator_name" in s:
        out["operatorInformation"] = [s["operator_name"]]
    if "public_url" in s:
        out["urlLinkAddress"] = s["public_url"]
    return out


def _space(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "_id": str(p["id"]),
        "locationAndDimension": _location(p),
        "availability": AVAILABILITY[p["realtime_status"]],
        "lastUpdate": p.get("realtime_data_updated_at", p["static_data_updated_at"]),
    }


def publication(
    sites: Sequence[dict[str, Any]], spots: Sequence[dict[str, Any]], *, name: str, lang: str, published: str
) -> dict[str, Any]:
    """The payload publication of every ParkAPI site and of the given ``spots``; ``published`` is the publication
    time (ParkAPI date-time text)."""
    return {
        "_version": VERSION,
        "_modelBaseVersion": MODEL_BASE_VERSION,
        "parkingPublicationLight": {
            "lang": lang,
            "name": name,
            "publicationTime": published,
            "parkingSite": [_site(s) for s in sites],
            "parkingSpace": [_space(p) for p in spots],
        },
    }
