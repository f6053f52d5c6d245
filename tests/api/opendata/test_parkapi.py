"""ParkAPI v3 routes on seeded lots: the answers validate against a schema written from the ParkAPI v3
documentation (field names, types, value lists), the numbers equal /api/v1/parking/lots, paging walks every item
once, filters select, and bad parameters are 400 problems."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from apitest import ApiClient, Seeder, make_settings, now
from opendatatest import seed_town

DATE_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}
PURPOSES = ["CAR", "BIKE", "MOTORCYCLE", "ITEM"]
SITE_TYPES = [
    "ON_STREET",
    "OFF_STREET_PARKING_GROUND",
    "UNDERGROUND",
    "CAR_PARK",
    "WALL_LOOPS",
    "SAFE_WALL_LOOPS",
    "STANDS",
    "LOCKERS",
    "SHED",
    "TWO_TIER",
    "BUILDING",
    "FLOOR",
    "LOCKBOX",
    "OTHER",
]
COUNT = {"type": "integer", "minimum": 0}
SITE = {
    "type": "object",
    "required": [
        "id",
        "source_id",
        "original_uid",
        "name",
        "type",
        "purpose",
        "lat",
        "lon",
        "capacity",
        "has_realtime_data",
        "static_data_updated_at",
    ],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "source_id": {"type": "integer", "minimum": 1},
        "original_uid": {"type": "string", "maxLength": 256},
        "name": {"type": "string", "minLength": 1, "maxLength": 256},
        "type": {"enum": SITE_TYPES},
        "purpose": {"enum": PURPOSES},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "capacity": COUNT,
        "realtime_capacity": COUNT,
        "realtime_free_capacity": COUNT,
        "realtime_opening_status": {"enum": ["OPEN", "CLOSED", "UNKNOWN"]},
        "has_realtime_data": {"type": "boolean"},
        "realtime_data_updated_at": DATE_TIME,
        "static_data_updated_at": DATE_TIME,
        "created_at": DATE_TIME,
        "modified_at": DATE_TIME,
        "opening_hours": {"type": "string", "maxLength": 512},
        "address": {"type": "string", "maxLength": 512},
        "fee_description": {"type": "string", "maxLength": 4096},
        "has_fee": {"type": "boolean"},
        "operator_name": {"type": "string", "maxLength": 256},
        "public_url": {"type": "string", "format": "uri", "maxLength": 4096},
        "park_and_ride_type": {"type": "array", "items": {"enum": ["CARPOOL", "TRAIN", "BUS", "TRAM", "YES", "NO"]}},
    },
    "additionalProperties": False,
}
SPOT = {
    "type": "object",
    "required": ["id", "source_id", "original_uid", "purpose", "lat", "lon", "has_realtime_data"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "source_id": {"type": "integer", "minimum": 1},
        "parking_site_id": {"type": "integer", "minimum": 1},
        "original_uid": {"type": "string", "maxLength": 256},
        "name": {"type": "string", "maxLength": 256},
        "purpose": {"enum": PURPOSES},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "has_realtime_data": {"type": "boolean"},
        "realtime_status": {"enum": ["AVAILABLE", "TAKEN", "UNKNOWN"]},
        "realtime_data_updated_at": DATE_TIME,
        "static_data_updated_at": DATE_TIME,
        "created_at": DATE_TIME,
        "modified_at": DATE_TIME,
    },
    "additionalProperties": False,
}


def listing(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "total_count"],
        "properties": {
            "items": {"type": "array", "items": item},
            "total_count": COUNT,
            "next_id": {"type": "integer", "minimum": 1},
            "next_path": {"type": "string", "pattern": "^/api/public/v3/"},
        },
        "additionalProperties": False,
    }


SITES = jsonschema_rs.validator_for(listing(SITE))
SPOTS = jsonschema_rs.validator_for(listing(SPOT))
SOURCE = jsonschema_rs.validator_for(
    listing(
        {
            "type": "object",
            "required": ["id", "uid", "public_url"],
            "properties": {
                "id": {"type": "integer"},
                "uid": {"type": "string", "minLength": 1, "maxLength": 256},
                "name": {"type": "string", "maxLength": 256},
                "public_url": {"type": "string", "maxLength": 4096},
                "attribution_license": {"type": "string"},
                "static_status": {"enum": ["DISABLED", "ACTIVE", "FAILED", "PROVISIONED"]},
                "realtime_status": {"enum": ["DISABLED", "ACTIVE", "FAILED", "PROVISIONED"]},
                "static_data_updated_at": DATE_TIME,
                "realtime_data_updated_at": DATE_TIME,
                "created_at": DATE_TIME,
                "modified_at": DATE_TIME,
            },
            "additionalProperties": False,
        }
    )
)


def test_parking_sites_follow_parkapi_and_equal_the_lots_route(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    r = client.get("/api/public/v3/parking-sites")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    SITES.validate(body)
    sites = {s["original_uid"]: s for s in body["items"]}
    assert set(sites) == {"markt", "bahnhof", "ring"} and body["total_count"] == 3  # "nowhere" has no position
    assert [s["id"] for s in body["items"]] == sorted(s["id"] for s in body["items"])
    lots = {lot["lot_id"]: lot for lot in client.get("/api/v1/parking/lots").json()["data"]}
    for uid, s in sites.items():
        assert s["capacity"] == lots[uid]["capacity"]
        if lots[uid]["updated_at"] is not None:
            assert s["realtime_free_capacity"] == lots[uid]["free"]
    markt, bahnhof, ring = sites["markt"], sites["bahnhof"], sites["ring"]
    assert (markt["realtime_free_capacity"], markt["realtime_capacity"], markt["has_realtime_data"]) == (2, 4, True)
    assert markt["type"] == "CAR_PARK" and markt["purpose"] == "CAR" and markt["realtime_opening_status"] == "OPEN"
    assert markt["park_and_ride_type"] == ["TRAM"] and markt["has_fee"] is True
    assert markt["address"] == "Markt 1, 04109 Leipzig" and markt["opening_hours"] == "24/7"
    assert (bahnhof["has_realtime_data"], bahnhof["realtime_free_capacity"]) == (False, 3)  # 40 minutes old
    assert bahnhof["realtime_opening_status"] == "CLOSED" and bahnhof["type"] == "ON_STREET"
    assert ring["has_realtime_data"] is False and "realtime_free_capacity" not in ring
    assert ring["type"] == "OTHER" and ring["realtime_opening_status"] == "UNKNOWN"
    one = client.get(f"/api/public/v3/parking-sites/{markt['id']}")
    assert one.status_code == 200 and one.json() == markt
    missing = client.get("/api/public/v3/parking-sites/999999")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_parking_spots_count_silent_sensors_as_unknown(client: ApiClient, seed: Seeder) -> None:
    devs = seed_town(seed)
    seed.site("markt-s999", "space", parent_id="markt")  # no sensor at all
    r = client.get("/api/public/v3/parking-spots", params={"limit": 100})
    body = r.json()
    SPOTS.validate(body)
    spots = {p["original_uid"]: p for p in body["items"]}
    assert body["total_count"] == len(spots) == 4 + 3 + 2 + 1
    markt_id = next(
        s["id"] for s in client.get("/api/public/v3/parking-sites").json()["items"] if s["original_uid"] == "markt"
    )
    status = {
        uid: (p["realtime_status"], p["has_realtime_data"]) for uid, p in spots.items() if uid.startswith("markt")
    }
    assert status == {
        "markt-s000": ("AVAILABLE", True),
        "markt-s001": ("AVAILABLE", True),
        "markt-s002": ("TAKEN", True),
        "markt-s003": ("UNKNOWN", False),
        "markt-s999": ("UNKNOWN", False),
    }
    assert all(spots[uid]["parking_site_id"] == markt_id for uid in status)
    assert {spots[f"bahnhof-s00{k}"]["realtime_status"] for k in range(3)} == {"AVAILABLE"}
    assert not any(spots[f"bahnhof-s00{k}"]["has_realtime_data"] for k in range(3))  # 40 minutes old
    one_lot = client.get("/api/public/v3/parking-spots", params={"parking_site_id": markt_id}).json()
    assert sorted(p["original_uid"] for p in one_lot["items"]) == sorted(status)
    assert len(devs["markt"]) == 4


@pytest.mark.parametrize("path,limit", [("/api/public/v3/parking-sites", 3), ("/api/public/v3/parking-spots", 4)])
def test_paging_walks_every_item_once(client: ApiClient, seed: Seeder, path: str, limit: int) -> None:
    for k in range(7):
        seed.lot(f"lot-{k}", 2, lat=51.3 + k / 100, lon=12.3)
    everything = client.get(path, params={"limit": 100}).json()
    total = everything["total_count"]
    assert total == (7 if path.endswith("sites") else 14) and "next_id" not in everything
    seen: list[int] = []
    url: str | None = f"{path}?limit={limit}&purpose=CAR" if path.endswith("sites") else f"{path}?limit={limit}"
    pages = 0
    while url:
        page = client.get(url).json()
        assert page["total_count"] == total and len(page["items"]) <= limit
        seen += [i["id"] for i in page["items"]]
        url = page.get("next_path")
        if url:
            assert page["next_id"] == page["items"][-1]["id"] + 1 and f"start={page['next_id']}" in url
        pages += 1
        assert pages <= total + 1
    assert seen == [i["id"] for i in everything["items"]] and len(set(seen)) == total


def test_filters_select_by_place_type_purpose_and_name(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    url = "/api/public/v3/parking-sites"

    def uids(**params: Any) -> set[str]:
        r = client.get(url, params=params)
        assert r.status_code == 200, r.text
        return {s["original_uid"] for s in r.json()["items"]}

    assert uids(lat=51.3400, lon=12.3750, radius=750) == {"markt", "bahnhof"}  # bahnhof is 739 m away
    assert uids(lat=51.3400, lon=12.3750, radius=730) == {"markt"}
    assert uids(lat_min=51.29, lat_max=51.31, lon_min=12.29, lon_max=12.31) == {"ring"}
    assert uids(type="ON_STREET") == {"bahnhof"}
    assert uids(purpose="BIKE") == set()
    assert uids(name="BAHN") == {"bahnhof"}
    assert uids(source_uid="stadtpuls") == {"markt", "bahnhof", "ring"}
    assert uids(source_uid="elsewhere") == set()


@pytest.mark.parametrize(
    "query",
    [
        "lat=51.3",
        "lat=51.3&lon=12.3",
        "radius=100",
        "lat=91&lon=12&radius=5",
        "lat_min=51&lat_max=52",
        "lat_min=52&lat_max=51&lon_min=12&lon_max=13",
        "limit=0",
        "limit=1001",
        "start=-1",
        "type=GARAGE",
        "purpose=car",
        "radius=abc&lat=1&lon=1",
    ],
)
def test_bad_parameters_are_400_problems(client: ApiClient, seed: Seeder, query: str) -> None:
    seed_town(seed)
    r = client.get(f"/api/public/v3/parking-sites?{query}")
    assert r.status_code == 400, (query, r.text)
    assert r.headers["content-type"] == "application/problem+json" and r.json()["status"] == 400


def test_bad_spot_and_site_parameters_are_400_problems(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    for url in (
        "/api/public/v3/parking-spots?limit=101",
        "/api/public/v3/parking-spots?lat=1",
        "/api/public/v3/parking-sites/0",
        "/api/public/v3/parking-sites/abc",
        "/api/public/gtfs-rt/vehicle-positions.pb?format=xml",
    ):
        r = client.get(url)
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", url


def test_sources_name_this_hub(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    body = client.get("/api/public/v3/sources").json()
    SOURCE.validate(body)
    (source,) = body["items"]
    assert (source["id"], source["uid"], source["realtime_status"]) == (1, "stadtpuls", "ACTIVE")
    assert source["public_url"] == "http://test/"
    sites = client.get("/api/public/v3/parking-sites").json()["items"]
    assert source["realtime_data_updated_at"] == max(
        s["realtime_data_updated_at"] for s in sites if "realtime_data_updated_at" in s
    )


def test_cached_answers_follow_the_data(make_client: Any, clean_db: str, seed: Seeder) -> None:
    devs = seed.lot("markt", 2, lat=51.34, lon=12.375)
    api = make_client(make_settings(clean_db, api_cache_ttl=60))
    url = "/api/public/v3/parking-sites?purpose=CAR&limit=5"
    first = api.get(url).json()
    assert "realtime_free_capacity" not in first["items"][0]
    seed.park(devs[0], now(), False)
    assert api.get(url).json() == first  # the same answer while the data is cached

    def changed() -> None:  # what a NOTIFY from the writer or the poll does
        for topic in api.ctx.hub.topics.values():
            topic.invalidate()

    api.portal.call(changed)
    assert api.get(url).json()["items"][0]["realtime_free_capacity"] == 1
    assert api.get("/api/public/v3/parking-spots?limit=1").json()["items"][0]["realtime_status"] == "AVAILABLE"
