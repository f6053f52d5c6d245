"""DATEX II parking publication light: every lot and space of the ParkAPI answer, with the same numbers and times."""

from __future__ import annotations

from datetime import UTC, datetime

from apitest import ApiClient, Seeder, now
from opendatatest import seed_town


def test_every_lot_appears_with_the_free_spaces_and_times_of_parkapi(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    before = now()  # whole seconds, as the publication time is written
    r = client.get("/api/public/datex2/json", params={"spaces": "true"})
    after = datetime.now(UTC)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert (doc["_version"], doc["_modelBaseVersion"]) == ("3.4", "3")
    light = doc["parkingPublicationLight"]
    assert light["lang"] == "de" and light["name"] == "stadtpuls"
    published = light["publicationTime"]
    assert before <= datetime.fromisoformat(published) <= after  # made for this request (the tests cache nothing)
    sites = {str(s["id"]): s for s in client.get("/api/public/v3/parking-sites").json()["items"]}
    datex = {s["_id"]: s for s in light["parkingSite"]}
    assert set(datex) == set(sites)
    for key, s in sites.items():
        d = datex[key]
        assert d["name"] == s["name"]
        assert d.get("availableSpaces") == s.get("realtime_free_capacity")
        assert d["numberOfSpaces"] == s.get("realtime_capacity", s["capacity"])
        assert d["lastUpdate"] == s.get("realtime_data_updated_at", s["static_data_updated_at"])
        assert d["locationAndDimension"]["coordinatesForDisplay"] == {"latitude": s["lat"], "longitude": s["lon"]}
        assert d["type"] in ("carPark", "onStreet", "offStreetParkingGround", "other")
    by_name = {d["name"]: d for d in light["parkingSite"]}
    markt, bahnhof, ring = by_name["Markt"], by_name["Bahnhof"], by_name["Ring"]
    assert (markt["type"], markt["isOpenNow"], markt["availableSpaces"]) == ("carPark", True, 2)
    assert markt["tariffDescription"] == ["2 EUR/h"] and markt["freeParking"] is False
    assert markt["openingTimesDescription"] == ["24/7"] and markt["urlLinkAddress"] == "https://example.org/markt"
    assert (bahnhof["type"], bahnhof["isOpenNow"]) == ("onStreet", False)
    assert "availableSpaces" not in ring and "isOpenNow" not in ring and ring["type"] == "other"
    spots = {str(p["id"]): p for p in client.get("/api/public/v3/parking-spots", params={"limit": 100}).json()["items"]}
    spaces = {p["_id"]: p for p in light["parkingSpace"]}
    assert set(spaces) == set(spots)
    wanted = {"AVAILABLE": "available", "TAKEN": "occupied", "UNKNOWN": "unknown"}
    for key, p in spots.items():
        assert spaces[key]["availability"] == wanted[p["realtime_status"]]
        assert spaces[key]["lastUpdate"] == p.get("realtime_data_updated_at", p["static_data_updated_at"])
    assert sorted(p["availability"] for p in light["parkingSpace"]).count("occupied") == 1


def test_by_default_the_publication_carries_the_lots_only(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    light = client.get("/api/public/datex2/json").json()["parkingPublicationLight"]
    full = client.get("/api/public/datex2/json", params={"spaces": "true"}).json()["parkingPublicationLight"]
    assert light["parkingSpace"] == [] and len(full["parkingSpace"]) == 9
    assert light["parkingSite"] == full["parkingSite"]
    assert client.get("/api/public/datex2/json", params={"spaces": "perhaps"}).status_code == 400
