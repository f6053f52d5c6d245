"""Public routes and open-data feeds per town: under a town's prefix each answers with that town's sites only
(another town's lot, line or entity is 404), without a prefix with every town's; an unknown town is 404. Two towns
seeded on the session database (``townstest``); the feeds read with their standards' client libraries where the
feed tests do (gtfs-realtime-bindings)."""

from __future__ import annotations

from typing import Any

import pytest
from apitest import ApiClient, Seeder, make_settings
from google.transit import gtfs_realtime_pb2 as rt
from townstest import NORTH, SOUTH, TOWNS, Town, seed_towns

from stadtpuls.api.routes.pages import brand_text_colour

ALL_LOTS = {lot for town in TOWNS for lot in town.lots}


def api(town: Town | None, path: str) -> str:
    """``/api/v1/...`` of the hub, or of ``town``."""
    return path if town is None else path.replace("/api/v1/", f"/api/v1/t/{town.slug}/", 1)


def feed(town: Town | None, path: str) -> str:
    """A feed's own path, of the hub or under ``town``'s prefix."""
    return path if town is None else f"/t/{town.slug}{path}"


def _json(client: ApiClient, url: str, status: int = 200) -> Any:
    r = client.get(url)
    assert r.status_code == status, (url, r.text)
    return r.json()


@pytest.fixture
def towns(seed: Seeder) -> None:
    seed_towns(seed)


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_parking_lots_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    lots = _json(client, api(town, "/api/v1/parking/lots"))
    expected = set(town.lots) if town else ALL_LOTS
    assert {lot["lot_id"] for lot in lots["data"]} == expected and lots["count"] == len(expected)
    at = _json(client, api(town, "/api/v1/parking/lots") + "?at=2030-01-01T00:00:00Z")
    assert {lot["lot_id"] for lot in at["data"]} == expected
    geo = _json(client, api(town, "/api/v1/parking/lots.geojson"))
    assert {f["id"] for f in geo["features"]} == expected


@pytest.mark.usefixtures("towns")
def test_figures_of_a_town_are_its_own(client: ApiClient) -> None:
    north = _json(client, api(NORTH, "/api/v1/parking/lots"))["data"]
    assert sum(lot["free"] for lot in north) == 1 and sum(lot["occupied"] for lot in north) == 5
    south = _json(client, api(SOUTH, "/api/v1/parking/lots"))["data"]
    assert [(lot["free"], lot["occupied"]) for lot in south] == [(2, 1)]


@pytest.mark.usefixtures("towns")
def test_another_towns_lot_and_line_are_not_found_under_a_prefix(client: ApiClient) -> None:
    lot, line = SOUTH.lots[0], SOUTH.line
    assert _json(client, api(SOUTH, f"/api/v1/parking/lots/{lot}"))["lot_id"] == lot
    assert _json(client, f"/api/v1/parking/lots/{lot}")["lot_id"] == lot
    for path in (
        f"/api/v1/parking/lots/{lot}",
        f"/api/v1/parking/lots/{lot}?at=2030-01-01T00:00:00Z",
        f"/api/v1/parking/lots/{lot}/history",
        f"/api/v1/buses/lines/{line}/hourly",
        f"/api/v1/buses/lines/{line}/load",
    ):
        _json(client, api(NORTH, path), 404)
        _json(client, api(SOUTH, path), 200)


def test_a_towns_history_is_in_its_own_time_zone(client: ApiClient, seed: Seeder) -> None:
    seed_towns(seed)
    seed.conn.execute("UPDATE tenants SET timezone = 'America/New_York' WHERE slug = 'south'")
    seed.conn.execute("UPDATE tenants SET timezone = 'Not/AZone' WHERE slug = 'north'")
    south = _json(client, api(SOUTH, f"/api/v1/parking/lots/{SOUTH.lots[0]}/history?bucket=day"))
    assert south["timezone"] == "America/New_York"
    assert all(b["start"].endswith(("-05:00", "-04:00")) for b in south["data"]) and south["data"]
    load = _json(client, api(SOUTH, f"/api/v1/buses/lines/{SOUTH.line}/load"))
    assert load["timezone"] == "America/New_York"
    hub = _json(client, f"/api/v1/parking/lots/{SOUTH.lots[0]}/history?bucket=day")
    assert hub["timezone"] == "Europe/Berlin"  # the hub's
    north = _json(client, api(NORTH, f"/api/v1/parking/lots/{NORTH.lots[0]}/history"))
    assert north["timezone"] == "Europe/Berlin"  # not a zone: the hub's


@pytest.mark.usefixtures("towns")
def test_an_unknown_town_is_not_found(client: ApiClient) -> None:
    for url in (
        "/api/v1/t/nowhere/parking/lots",
        "/api/v1/t/nowhere/buses/lines",
        "/t/nowhere/api/public/v3/parking-sites",
        "/t/nowhere/sta/v1.1/Things",
        "/t/nowhere/ngsi-ld/v1/entities?type=OffStreetParking",
    ):
        assert client.get(url).status_code == 404, url
    page = client.get("/t/nowhere/parking")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "nowhere" in page.text and "<script" not in page.text


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_buses_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    towns = [town] if town else list(TOWNS)
    lines = _json(client, api(town, "/api/v1/buses/lines"))["data"]
    assert {line["line_id"] for line in lines} == {t.line for t in towns}
    assert {line["line_id"]: line["passengers"] for line in lines}.get(NORTH.line, 30) == 30
    vehicles = _json(client, api(town, "/api/v1/buses/vehicles"))["data"]
    assert {v["vehicle_id"] for v in vehicles} == {t.bus for t in towns}
    stops = _json(client, api(town, "/api/v1/buses/stops"))["data"]
    assert {s["line_id"] for s in stops} == {t.line for t in towns} and len(stops) == 2 * len(towns)


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_parkapi_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    expected = set(town.lots) if town else ALL_LOTS
    sites = _json(client, feed(town, "/api/public/v3/parking-sites"))
    assert {s["original_uid"] for s in sites["items"]} == expected and sites["total_count"] == len(expected)
    filtered = _json(client, feed(town, "/api/public/v3/parking-sites?purpose=CAR&limit=1"))
    assert filtered["total_count"] == len(expected) and len(filtered["items"]) == 1
    assert filtered["next_path"].startswith(feed(town, "/api/public/v3/parking-sites?"))  # the next page in town
    spots = _json(client, feed(town, "/api/public/v3/parking-spots?limit=100"))
    assert {p["original_uid"].rsplit("-s", 1)[0] for p in spots["items"]} == expected
    source = _json(client, feed(town, "/api/public/v3/sources"))["items"][0]
    assert (town is None) == (NORTH.name not in source["name"] and SOUTH.name not in source["name"])
    for s in _json(client, "/api/public/v3/parking-sites")["items"]:
        in_town = town is None or s["original_uid"] in town.lots
        assert client.get(feed(town, f"/api/public/v3/parking-sites/{s['id']}")).status_code == (
            200 if in_town else 404
        )


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_datex2_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    hub_ids = {s["id"]: s["original_uid"] for s in _json(client, "/api/public/v3/parking-sites")["items"]}
    expected = set(town.lots) if town else ALL_LOTS
    light = _json(client, feed(town, "/api/public/datex2/json?spaces=true"))["parkingPublicationLight"]
    assert {hub_ids[int(s["_id"])] for s in light["parkingSite"]} == expected
    assert len(light["parkingSpace"]) == 3 * len(expected)
    plain = _json(client, feed(town, "/api/public/datex2/json"))["parkingPublicationLight"]
    assert len(plain["parkingSite"]) == len(expected) and plain["parkingSpace"] == []


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_gtfs_realtime_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    r = client.get(feed(town, "/api/public/gtfs-rt/vehicle-positions.pb"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    msg = rt.FeedMessage()
    msg.ParseFromString(r.content)
    buses = {t.bus: t for t in ([town] if town else TOWNS)}
    assert {e.id for e in msg.entity} == set(buses)
    for e in msg.entity:
        assert e.vehicle.trip.route_id == f"route-{buses[e.id].line}"
    assert msg.header.timestamp == max(e.vehicle.timestamp for e in msg.entity)
    people = _json(client, feed(town, "/api/public/gtfs-rt/vehicle-positions.pb?format=json"))
    assert {e["id"] for e in people["entity"]} == set(buses)


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_sensorthings_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    base = "http://test" + feed(town, "/sta/v1.1")
    towns = [town] if town else list(TOWNS)
    things = _json(client, feed(town, "/sta/v1.1/Things?$top=1000"))["value"]
    sites = {t["properties"]["siteId"] for t in things}
    assert {t.line for t in towns} | {t.bus for t in towns} | set().union(*(t.lots for t in towns)) <= sites
    assert all(s[0] in {t.slug[0] for t in towns} for s in sites)
    assert all(t["@iot.selfLink"].startswith(base + "/Things(") for t in things)
    streams = _json(client, feed(town, "/sta/v1.1/Datastreams?$top=1000&$expand=Thing"))["value"]
    assert streams and {d["Thing"]["properties"]["siteId"][0] for d in streams} == {t.slug[0] for t in towns}
    observations = _json(client, feed(town, "/sta/v1.1/Observations?$top=1000&$expand=Datastream/Thing"))["value"]
    assert {o["Datastream"]["Thing"]["properties"]["siteId"][0] for o in observations} == {t.slug[0] for t in towns}
    # a catalogue is the hub's, but what it leads to is the town's
    sensors = _json(client, feed(town, "/sta/v1.1/Sensors?$expand=Datastreams($expand=Thing)"))["value"]
    nested = {d["Thing"]["properties"]["siteId"][0] for s in sensors for d in s["Datastreams"]}
    assert nested == {t.slug[0] for t in towns}


@pytest.mark.usefixtures("towns")
def test_sensorthings_entities_of_another_town_are_not_found(client: ApiClient) -> None:
    things = _json(client, "/sta/v1.1/Things?$top=1000&$filter=properties/siteId eq 's-hafen'")["value"]
    tid = things[0]["@iot.id"]
    assert _json(client, f"/t/south/sta/v1.1/Things({tid})")["properties"]["siteId"] == "s-hafen"
    _json(client, f"/t/north/sta/v1.1/Things({tid})", 404)
    _json(client, f"/t/north/sta/v1.1/Locations({tid})", 404)
    observation = _json(client, "/t/south/sta/v1.1/Observations?$top=1&$expand=Datastream")["value"][0]
    ds, oid = observation["Datastream"]["@iot.id"], observation["@iot.id"]
    _json(client, f"/t/north/sta/v1.1/Datastreams({ds})", 404)
    _json(client, f"/t/north/sta/v1.1/Datastreams({ds})/Observations", 404)
    _json(client, f"/t/north/sta/v1.1/Observations('{oid}')", 404)
    assert _json(client, f"/t/south/sta/v1.1/Datastreams({ds})/Observations")["value"]
    assert _json(client, f"/t/south/sta/v1.1/Observations('{oid}')")["@iot.id"] == oid


def test_sensorthings_keeps_each_towns_answer_under_its_own_url(make_client: Any, clean_db: str, seed: Seeder) -> None:
    seed_towns(seed)
    client = make_client(make_settings(clean_db, api_cache_ttl=60))
    for _ in range(2):  # the second round is answered from the cache
        for town in (NORTH, SOUTH, None):
            things = _json(client, feed(town, "/sta/v1.1/Things?$filter=properties/kind eq 'lot'"))["value"]
            assert {t["properties"]["siteId"] for t in things} == (set(town.lots) if town else ALL_LOTS)


def test_cached_answers_of_each_town_and_of_the_hub_stay_apart(make_client: Any, clean_db: str, seed: Seeder) -> None:
    """With the live cache on, each town's cut of a cached summary or feed (and of a filtered page of it) is kept
    beside the hub's, never answered for another town."""
    seed_towns(seed)
    client = make_client(make_settings(clean_db, api_cache_ttl=60))
    for _ in range(2):  # the second round is answered from the kept bodies
        for town in (NORTH, SOUTH, None):
            expected = set(town.lots) if town else ALL_LOTS
            lots = _json(client, api(town, "/api/v1/parking/lots"))["data"]
            assert {lot["lot_id"] for lot in lots} == expected
            for query in ("", "?limit=1", "?purpose=CAR"):
                sites = _json(client, feed(town, "/api/public/v3/parking-sites" + query))
                assert sites["total_count"] == len(expected), (town, query)
            spots = _json(client, feed(town, "/api/public/v3/parking-spots?limit=100"))
            assert len(spots["items"]) == 3 * len(expected)
            buses = {t.bus for t in ([town] if town else TOWNS)}
            msg = rt.FeedMessage.FromString(client.get(feed(town, "/api/public/gtfs-rt/vehicle-positions.pb")).content)
            assert {e.id for e in msg.entity} == buses
            people = _json(client, feed(town, "/api/public/gtfs-rt/vehicle-positions.pb?format=json"))
            assert {e["id"] for e in people["entity"]} == buses


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("town", [NORTH, SOUTH, None], ids=["north", "south", "hub"])
def test_ngsi_ld_of_a_town_and_of_the_hub(client: ApiClient, town: Town | None) -> None:
    types = "OffStreetParking,ParkingSpot,WasteContainer,CrowdFlowObserved"
    found = _json(client, feed(town, f"/ngsi-ld/v1/entities?type={types}&limit=1000"))
    sites = {e["id"].split(":", 3)[3] for e in found}
    towns = [town] if town else list(TOWNS)
    assert {s[0] for s in sites} == {t.slug[0] for t in towns}
    assert set().union(*(set(t.lots) | set(t.bins) | {t.bus} for t in towns)) <= sites
    other = SOUTH if town is NORTH else NORTH
    status = 404 if town is not None and town is not other else 200
    r = client.get(feed(town, f"/ngsi-ld/v1/entities/urn:ngsi-ld:OffStreetParking:{other.lots[0]}"))
    assert r.status_code == status
    r = client.get(feed(town, f"/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:WasteContainer:{other.bins[0]}"))
    assert r.status_code == status


@pytest.mark.usefixtures("towns")
def test_district_has_every_town_with_its_live_figures(client: ApiClient) -> None:
    body = _json(client, "/api/v1/district")
    by_slug = {t["slug"]: t for t in body["data"]}
    assert set(by_slug) == {"default", "north", "south"} and body["count"] == 3
    north, south = by_slug["north"], by_slug["south"]
    assert north["title"] == NORTH.brand_name and south["title"] == SOUTH.name
    assert north["parking"] | {"updated_at": None} == {
        "lots": 2,
        "capacity": 6,
        "free": 1,
        "occupied": 5,
        "updated_at": None,
    }
    assert south["parking"]["free"] == 2 and south["parking"]["capacity"] == 3
    assert north["buses"] == {
        "lines": 1,
        "vehicles_in_service": 1,
        "passengers": 30,
        "capacity": 80,
        "occupancy_pct": 37.5,
    }
    assert south["buses"]["passengers"] == 12
    assert north["waste"] == {"bins": 2, "over_threshold": 1} and south["waste"] == {"bins": 1, "over_threshold": 0}
    assert north["links"] == {"parking": "/t/north/parking", "buses": "/t/north/buses", "api": "/api/v1/t/north"}
    assert by_slug["default"]["parking"]["lots"] == 0


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("path", ["/parking", "/buses", "/operator/pickups", "/operator/alerts", ""])
def test_town_pages_carry_the_towns_name_logo_colour_and_links(client: ApiClient, path: str) -> None:
    r = client.get(f"/t/north{path}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    escaped = "Nordstadt &lt;live&gt; &amp; &quot;more&quot;"
    assert f" · {escaped}</title>" in page and f"> {escaped}</a>" in page
    assert NORTH.brand_name not in page  # never unescaped
    assert f'<img src="{NORTH.logo_url}"' in page
    assert "https://cdn.example.org" in r.headers["content-security-policy"]
    assert '<link rel="stylesheet" href="/t/north/town.css">' in page
    assert 'href="/t/north/parking"' in page and 'href="/t/north/buses"' in page
    assert 'href="/parking"' not in page and 'href="/buses"' not in page
    css = client.get("/t/north/town.css")
    assert css.headers["content-type"].startswith("text/css")
    assert css.text.strip() == f":root {{ --brand: {NORTH.colour}; --brand-text: #1b2128; }}"
    south = client.get(f"/t/south{path}").text
    assert " · Südheim</title>" in south and "town.css" not in south and 'href="/t/south/buses"' in south
    hub = client.get(path or "/").text
    assert " · stadtpuls</title>" in hub and "/t/" not in hub


@pytest.mark.usefixtures("towns")
@pytest.mark.parametrize("path", ["/parking", "/t/north/parking", "/t/south/operator/alerts"])
def test_a_page_the_browser_has_is_not_sent_again(client: ApiClient, path: str) -> None:
    first = client.get(path)
    etag = first.headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert "content-security-policy" in again.headers and again.headers["cache-control"] == "no-cache"
    changed = client.get(path, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == first.content
    other = client.get({"/parking": "/buses", "/t/north/parking": "/t/south/parking"}.get(path, "/operator/alerts"))
    assert other.headers["etag"] != etag  # another page or another town's page is another body


def test_the_text_on_a_towns_colour_is_the_one_that_reads_better() -> None:
    assert brand_text_colour("#0f3d63") == "#ffffff"
    assert brand_text_colour("#ffd23f") == "#1b2128"
