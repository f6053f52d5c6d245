"""GTFS-Realtime VehiclePositions: the feed parses with the official bindings, carries one entity per bus heard
recently with its route, last stop, time and occupancy, and the occupancy enum is right at every boundary."""

from __future__ import annotations

from datetime import timedelta

import pytest
from apitest import ApiClient, Seeder, make_settings, now
from google.transit import gtfs_realtime_pb2 as rt

from stadtpuls.api.opendata.gtfsrt import occupancy_status
from stadtpuls.settings import Settings

S = rt.VehiclePosition.OccupancyStatus
URL = "/api/public/gtfs-rt/vehicle-positions.pb"


@pytest.mark.parametrize(
    "passengers,status",
    [
        (0, S.EMPTY),
        (1, S.MANY_SEATS_AVAILABLE),
        (23, S.MANY_SEATS_AVAILABLE),  # 9 of 32 seats free: more than a quarter
        (24, S.FEW_SEATS_AVAILABLE),  # 8 free: a quarter
        (31, S.FEW_SEATS_AVAILABLE),  # the last free seat
        (32, S.STANDING_ROOM_ONLY),  # every seat taken, 53 standing places free
        (71, S.STANDING_ROOM_ONLY),  # 14 standing places free: more than a quarter of 53
        (72, S.CRUSHED_STANDING_ROOM_ONLY),  # 13 free
        (84, S.CRUSHED_STANDING_ROOM_ONLY),  # the last free place
        (85, S.FULL),  # design capacity
        (97, S.FULL),
        (-3, S.EMPTY),
    ],
)
def test_occupancy_status_at_every_boundary(passengers: int, status: int) -> None:
    assert occupancy_status(passengers, 32, 53) == status


def test_occupancy_status_of_a_vehicle_without_standing_places() -> None:
    assert occupancy_status(39, 40, 0) == S.FEW_SEATS_AVAILABLE
    assert occupancy_status(40, 40, 0) == S.FULL


def _zone_at_noon() -> str:
    """A fixed-offset time zone in which it is now about noon: a bus day there (counted from local midnight) began
    hours ago, whatever the hour the test runs at."""
    return f"Etc/GMT{now().hour - 12:+d}"  # Etc/GMT+N is N hours behind UTC


@pytest.fixture
def settings(clean_db: str) -> Settings:
    """The hub's settings in a zone where it is about noon: readings minutes old are of today's bus day."""
    return make_settings(clean_db, timezone=_zone_at_noon())


def _fleet(seed: Seeder) -> dict[str, str]:
    seed.site("line-5", "line", name="Line 5")
    seed.conn.execute("UPDATE sites SET gtfs_route_id = 'de:leipzig:5' WHERE site_id = 'line-5'")
    for k in range(3):
        seed.site(f"stop-{k}", "stop", parent_id="line-5", seq=k, lat=51.33 + k / 1000, lon=12.37)
    seed.site("bus-1", "vehicle", parent_id="line-5", capacity=85, name="Wagen 1")
    seed.site("bus-2", "vehicle", parent_id="line-5", capacity=140)
    seed.site("bus-3", "vehicle", parent_id="line-5", capacity=85)
    seed.conn.execute(
        "UPDATE sites SET seated_capacity = 32, standing_capacity = 53 WHERE site_id IN ('bus-1', 'bus-3')"
    )
    return {
        "door1": seed.device("bus-1", codec="milesight-iot/vs133"),
        "door2": seed.device("bus-2", codec="milesight-iot/vs133"),
        "door3": seed.device("bus-3", codec="milesight-iot/vs133"),
    }


def test_vehicle_positions_feed(client: ApiClient, seed: Seeder) -> None:
    d = _fleet(seed)
    t = now()
    seed.passengers(d["door1"], t - timedelta(minutes=4), pax_in=30, pax_out=0, stop_id="stop-0")
    seed.passengers(d["door1"], t - timedelta(minutes=2), pax_in=12, pax_out=2, stop_id="stop-1")  # 40 on board
    seed.passengers(d["door2"], t - timedelta(minutes=1), pax_in=7, pax_out=0, stop_id="stop-2")
    seed.passengers(d["door3"], t - timedelta(minutes=20), pax_in=5, pax_out=0, stop_id="stop-0")  # silent since
    r = client.get(URL)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    msg = rt.FeedMessage()
    msg.ParseFromString(r.content)
    assert msg.header.gtfs_realtime_version == "2.0"
    assert msg.header.incrementality == rt.FeedHeader.FULL_DATASET
    assert msg.header.timestamp == int((t - timedelta(minutes=1)).timestamp())  # the newest reading
    by_id = {e.id: e.vehicle for e in msg.entity}
    assert set(by_id) == {"bus-1", "bus-2"}  # bus-3 silent for longer than 15 minutes: left out
    b1, b2 = by_id["bus-1"], by_id["bus-2"]
    assert (b1.vehicle.id, b1.vehicle.label, b1.trip.route_id) == ("bus-1", "Wagen 1", "de:leipzig:5")
    assert (b1.position.latitude, b1.position.longitude) == pytest.approx((51.331, 12.37))
    assert b1.timestamp == int((t - timedelta(minutes=2)).timestamp())
    assert (b1.occupancy_percentage, b1.occupancy_status) == (round(100 * 40 / 85), S.STANDING_ROOM_ONLY)
    assert b2.occupancy_percentage == 5 and not b2.HasField("occupancy_status")  # seats not registered
    people = client.get(URL, params={"format": "json"})
    assert people.headers["content-type"] == "application/json"
    body = people.json()
    assert body["header"]["gtfs_realtime_version"] == "2.0" and len(body["entity"]) == 2
    first = next(e for e in body["entity"] if e["id"] == "bus-1")["vehicle"]
    assert first["occupancy_status"] == "STANDING_ROOM_ONLY" and first["trip"]["route_id"] == "de:leipzig:5"


def test_the_silent_time_is_a_setting(make_client, clean_db: str, seed: Seeder) -> None:
    d = _fleet(seed)
    seed.passengers(d["door3"], now() - timedelta(minutes=20), pax_in=5, pax_out=0, stop_id="stop-0")
    api = make_client(make_settings(clean_db, gtfs_rt_max_age=3600, timezone=_zone_at_noon()))
    msg = rt.FeedMessage()
    msg.ParseFromString(api.get(URL).content)
    assert [e.id for e in msg.entity] == ["bus-3"]
    assert msg.entity[0].vehicle.occupancy_status == S.MANY_SEATS_AVAILABLE


def test_an_empty_fleet_gives_a_valid_empty_feed(client: ApiClient) -> None:
    msg = rt.FeedMessage()
    msg.ParseFromString(client.get(URL).content)
    assert len(msg.entity) == 0 and msg.header.gtfs_realtime_version == "2.0"
    assert abs(msg.header.timestamp - now().timestamp()) < 60
