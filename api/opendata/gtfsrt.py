"""GTFS-Realtime VehiclePositions, built with the official ``gtfs-realtime-bindings`` classes, as a view over the
vehicle summaries of :mod:`stadtpuls.api.queries.buses`.

One entity per bus heard within ``max_age`` (a bus silent for longer is left out, never shown with old numbers):

* ``vehicle.vehicle.id`` / ``label``: the vehicle's ``site_id`` and name; ``vehicle.trip.route_id``: its line's
  ``gtfs_route_id`` from the registry (no trip without one);
* ``vehicle.position``: the last stop it reported (the stop's registered position); ``vehicle.timestamp``: its
  newest reading;
* ``occupancy_percentage``: passengers per design capacity (seated + standing, else ``capacity``), 100 = full
  design capacity including standing places (may exceed 100);
* ``occupancy_status`` from the seated and standing capacity (:func:`occupancy_status`); left out when the seats
  are not registered.

FeedHeader: ``gtfs_realtime_version`` "2.0", ``incrementality`` FULL_DATASET, ``timestamp`` the newest reading
(the build time when no bus has reported).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.transit import gtfs_realtime_pb2 as rt

__all__ = ["FEW_SEATS_SHARE", "TIGHT_STANDING_SHARE", "feed", "feed_json", "occupancy_status", "only"]

#: Free seats up to this share of the seats are "few" (FEW_SEATS_AVAILABLE), more are "many".
FEW_SEATS_SHARE = 0.25
#: Free standing places up to this share of the standing places mean CRUSHED_STANDING_ROOM_ONLY.
TIGHT_STANDING_SHARE = 0.25
Occupancy = rt.VehiclePosition.OccupancyStatus


def occupancy_status(passengers: int, seated: int, standing: int) -> int:
    """The spec's OccupancyStatus for ``passengers`` on a vehicle with ``seated`` seats and ``standing`` places.

    EMPTY with nobody on board; MANY_SEATS_AVAILABLE while more than :data:`FEW_SEATS_SHARE` of the seats are free,
    FEW_SEATS_AVAILABLE while any seat is free; then STANDING_ROOM_ONLY while more than
    :data:`TIGHT_STANDING_SHARE` of the standing places are free, CRUSHED_STANDING_ROOM_ONLY while any is; FULL
    at or beyond the design capacity (seated + standing).
    """
    if passengers <= 0:
        return Occupancy.EMPTY
    free_seats = seated - passengers
    if free_seats > 0:
        return (
            Occupancy.MANY_SEATS_AVAILABLE if free_seats > FEW_SEATS_SHARE * seated else Occupancy.FEW_SEATS_AVAILABLE
        )
    free_standing = seated + standing - passengers
    if free_standing <= 0:
        return Occupancy.FULL
    if free_standing > TIGHT_STANDING_SHARE * standing:
        return Occupancy.STANDING_ROOM_ONLY
    return Occupancy.CRUSHED_STANDING_ROOM_ONLY


def _design(v: dict[str, Any]) -> int | None:
    if v["seated_capacity"] is not None and v["standing_capacity"] is not None:
        return int(v["seated_capacity"] + v["standing_capacity"]) or None
    return v["capacity"] or None


def feed(
    vehicles: Sequence[dict[str, Any]],
    facts: dict[str, dict[str, dict[str, Any]]],
    *,
    now: datetime,
    max_age: timedelta,
) -> rt.FeedMessage:
    """The VehiclePositions feed from the vehicle summaries (``queries.buses.vehicles``) and the fleet's registry
    facts (``queries.opendata.fleet_facts``)."""
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.incrementality = rt.FeedHeader.FULL_DATASET
    newest: datetime | None = None
    for v in vehicles:
        updated = v["updated_at"]
        if updated is None or now - updated > max_age or updated > now:
            continue
        fact = facts["vehicle"].get(v["vehicle_id"])
        if fact is None:
            continue
        entity = msg.entity.add()
        entity.id = v["vehicle_id"]
        vp = entity.vehicle
        vp.vehicle.id = v["vehicle_id"]
        if v["name"]:
            vp.vehicle.label = v["name"]
        route = facts["line"].get(v["line_id"] or "", {}).get("gtfs_route_id")
        if route:
            vp.trip.route_id = route
        stop = facts["stop"].get(v["stop_id"] or "")
        if stop is not None and stop["lat"] is not None and stop["lon"] is not None:
            vp.position.latitude = stop["lat"]
            vp.position.longitude = stop["lon"]
        vp.timestamp = int(updated.timestamp())
        passengers = v["passengers"]
        design = _design(fact)
        if passengers is not None and design:
            vp.occupancy_percentage = max(0, round(100 * passengers / design))
            if fact["seated_capacity"] is not None and fact["standing_capacity"] is not None:
                vp.occupancy_status = occupancy_status(passengers, fact["seated_capacity"], fact["standing_capacity"])
        newest = updated if newest is None or updated > newest else newest
    msg.header.timestamp = int((newest or now).timestamp())
    return msg


def only(msg: rt.FeedMessage, keep: Callable[[str], bool]) -> rt.FeedMessage:
    """The feed with only the vehicles whose id ``keep`` accepts (a town's buses); the header's timestamp is their
    newest reading (the whole feed's when none is left)."""
    out = rt.FeedMessage()
    out.header.CopyFrom(msg.header)
    kept = [e for e in msg.entity if keep(e.id)]
    out.entity.extend(kept)
    if kept:
        out.header.timestamp = max(e.vehicle.timestamp for e in kept)
    return out


def feed_json(msg: rt.FeedMessage) -> dict[str, Any]:
    """The feed as JSON for people: the protobuf field names, enums by name."""
    returned: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return returned
