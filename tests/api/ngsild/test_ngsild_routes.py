"""NGSI-LD at /ngsi-ld/v1 on a seeded database: the entities against the Smart Data Models (a schema written here
from the published model documentation), the @context by Accept, q and georel, the temporal history, errors."""

from __future__ import annotations

from datetime import datetime

import pytest
from apitest import ApiClient, Seeder, hours_ago
from ngsildtest import SCHEMA, check, town

from stadtpuls.api.ngsild import CONTEXT

URL = "/ngsi-ld/v1"
LD = {"Accept": "application/ld+json"}


def test_every_type_matches_its_smart_data_model(client: ApiClient, seed: Seeder) -> None:
    town(seed)
    r = client.get(f"{URL}/entities?type=OffStreetParking,ParkingSpot,WasteContainer,CrowdFlowObserved&limit=100")
    assert r.status_code == 200, r.text
    entities = r.json()
    assert {e["type"] for e in entities} == set(SCHEMA)
    for e in entities:
        check(e)
    by_id = {e["id"]: e for e in entities}
    lot = by_id["urn:ngsi-ld:OffStreetParking:lot-a"]
    assert (lot["totalSpotNumber"]["value"], lot["availableSpotNumber"]["value"]) == (3, 1)
    statuses = sorted(e["status"]["value"] for e in entities if e["type"] == "ParkingSpot")
    assert statuses == ["free", "occupied", "unknown"]
    bin_ = by_id["urn:ngsi-ld:WasteContainer:bin-1"]
    assert bin_["fillingLevel"]["value"] == 0.625 and bin_["storedWasteKind"]["value"] == "paper"
    assert datetime.fromisoformat(bin_["fillingLevel"]["observedAt"].replace("Z", "+00:00")) == hours_ago(1)
    bus = by_id["urn:ngsi-ld:CrowdFlowObserved:bus-1"]
    assert bus["peopleCount"]["value"] == 23
    assert bus["location"]["value"]["coordinates"] == [12.39, 51.35]


def test_context_is_a_link_header_for_json_and_in_the_body_for_json_ld(client: ApiClient, seed: Seeder) -> None:
    town(seed)
    r = client.get(f"{URL}/entities/urn:ngsi-ld:OffStreetParking:lot-a")
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["link"] == f'<{CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    assert "@context" not in r.json()
    r = client.get(f"{URL}/entities/urn:ngsi-ld:OffStreetParking:lot-a", headers=LD)
    assert r.headers["content-type"].startswith("application/ld+json")
    assert "link" not in r.headers
    assert r.json()["@context"][0] == CONTEXT
    kv = client.get(f"{URL}/entities/urn:ngsi-ld:WasteContainer:bin-1?options=keyValues").json()
    assert kv["fillingLevel"] == 0.625 and kv["location"]["type"] == "Point"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("type=ParkingSpot&q=status==%22free%22", ["lot-a-s001"]),
        ("type=ParkingSpot&q=status==%22free%22|status==%22occupied%22", ["lot-a-s000", "lot-a-s001"]),
        ("type=WasteContainer&q=fillingLevel>0.6;storedWasteKind==%22paper%22", ["bin-1"]),
        ("type=WasteContainer&q=fillingLevel>0.7", []),
        ("q=availableSpotNumber>=1", ["lot-a"]),
        ("type=ParkingSpot&q=refParkingSite==urn:ngsi-ld:OffStreetParking:lot-a&limit=1", ["lot-a-s000"]),
        (
            "type=OffStreetParking,WasteContainer&georel=near;maxDistance==1000&geometry=Point&coordinates=[12.38,51.331]",
            ["bin-1"],
        ),
        (
            "type=OffStreetParking,WasteContainer&georel=near;minDistance==1000&geometry=Point&coordinates=[12.38,51.331]",
            ["lot-a"],
        ),
        (
            "type=OffStreetParking,WasteContainer&georel=within&geometry=Polygon"
            "&coordinates=[[[12.3,51.3],[12.4,51.3],[12.4,51.335],[12.3,51.335],[12.3,51.3]]]",
            ["bin-1"],
        ),
    ],
)
def test_q_and_georel_select_entities(client: ApiClient, seed: Seeder, query: str, expected: list[str]) -> None:
    town(seed)
    r = client.get(f"{URL}/entities?{query}")
    assert r.status_code == 200, r.text
    assert [e["id"].split(":", 3)[3] for e in r.json()] == expected


def test_count_and_paging(client: ApiClient, seed: Seeder) -> None:
    town(seed)
    r = client.get(f"{URL}/entities?type=ParkingSpot&limit=2&offset=1&count=true")
    assert r.headers["ngsild-results-count"] == "3"
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:ParkingSpot:lot-a-s001", "urn:ngsi-ld:ParkingSpot:lot-a-s002"]


def test_temporal_history_of_a_waste_container(client: ApiClient, seed: Seeder) -> None:
    town(seed)
    start = (hours_ago(2.5)).isoformat().replace("+00:00", "Z")
    r = client.get(f"{URL}/temporal/entities/urn:ngsi-ld:WasteContainer:bin-1?timerel=after&timeAt={start}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(i["value"], i["observedAt"]) for i in body["fillingLevel"]] == [
        (0.55, hours_ago(2).isoformat().replace("+00:00", "Z")),
        (0.625, hours_ago(1).isoformat().replace("+00:00", "Z")),
    ]
    r = client.get(f"{URL}/temporal/entities/urn:ngsi-ld:WasteContainer:bin-1?lastN=1")
    assert [i["value"] for i in r.json()["fillingLevel"]] == [0.625]
    spot = client.get(f"{URL}/temporal/entities/urn:ngsi-ld:ParkingSpot:lot-a-s000").json()
    assert [i["value"] for i in spot["status"]] == ["occupied"]


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/entities", 400, "BadRequestData"),
        ("/entities?type=Bicycle", 400, "BadRequestData"),
        ("/entities?type=ParkingSpot&q=status", 400, "BadRequestData"),
        ("/entities?type=ParkingSpot&q=(status==1)", 400, "BadRequestData"),
        ("/entities?type=ParkingSpot&georel=near&geometry=Point&coordinates=[1,2]", 400, "BadRequestData"),
        ("/entities?type=ParkingSpot&georel=within&geometry=Point&coordinates=[1,2]", 400, "BadRequestData"),
        (
            "/entities?type=ParkingSpot&georel=near;maxDistance==5&geometry=Point&coordinates=nope",
            400,
            "BadRequestData",
        ),
        ("/entities/urn:ngsi-ld:ParkingSpot:nope", 404, "ResourceNotFound"),
        ("/entities/not-a-urn", 404, "ResourceNotFound"),
        (
            "/temporal/entities/urn:ngsi-ld:WasteContainer:bin-1?timerel=between&timeAt=2026-01-02T00:00:00Z",
            400,
            "BadRequestData",
        ),
        ("/temporal/entities/urn:ngsi-ld:WasteContainer:bin-1?timerel=after&timeAt=yesterday", 400, "BadRequestData"),
        ("/temporal/entities/urn:ngsi-ld:OffStreetParking:lot-a", 400, "BadRequestData"),
    ],
)
def test_errors_are_ngsi_ld_problem_details(client: ApiClient, seed: Seeder, path: str, status: int, kind: str) -> None:
    town(seed)
    r = client.get(URL + path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == f"https://uri.etsi.org/ngsi-ld/errors/{kind}" and body["detail"]


def test_long_ranges_are_refused(client: ApiClient, seed: Seeder) -> None:
    town(seed)
    old = (hours_ago(24 * 400)).isoformat().replace("+00:00", "Z")
    r = client.get(f"{URL}/temporal/entities/urn:ngsi-ld:WasteContainer:bin-1?timerel=after&timeAt={old}")
    assert r.status_code == 400 and "longer than" in r.json()["detail"]
