"""SensorThings API v1.1 at /sta/v1.1, in-process on a seeded database: entities, navigation, every query option,
keyset paging of Observations, and the error answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from apitest import ApiClient, Seeder, make_settings
from statest import BASE, public_id, seed_town, site_id

URL = "/sta/v1.1"


def _get(client: ApiClient, path: str, status: int = 200) -> Any:
    r = client.get(URL + path)
    assert r.status_code == status, (path, r.text)
    return r.json()


def _walk(client: ApiClient, path: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Every item of a collection, following @iot.nextLink; also the next links seen."""
    body = _get(client, path)
    items, links = list(body["value"]), []
    while "@iot.nextLink" in body:
        link = body["@iot.nextLink"]
        links.append(link)
        assert link.startswith(BASE)
        r = client.get(link.removeprefix("http://test"))
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["value"]
    return items, links


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_service_root_lists_every_entity_set_and_the_conformance_classes(client: ApiClient) -> None:
    body = _get(client, "")
    names = {v["name"]: v["url"] for v in body["value"]}
    assert set(names) == {
        "Things",
        "Locations",
        "HistoricalLocations",
        "Sensors",
        "ObservedProperties",
        "Datastreams",
        "Observations",
        "FeaturesOfInterest",
    }
    assert names["Things"] == BASE + "/Things"
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data" in body["serverSettings"]["conformance"]


def test_things_are_the_sites_with_self_and_navigation_links(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    body = _get(client, "/Things?$count=true")
    sites = seed.conn.execute("SELECT count(*) FROM sites").fetchone()[0]  # type: ignore[index]
    assert body["@iot.count"] == sites == len(body["value"])
    bin1 = next(t for t in body["value"] if t["properties"]["siteId"] == "bin-1")
    tid = site_id(seed, "bin-1")
    assert bin1["@iot.id"] == tid
    assert bin1["@iot.selfLink"] == f"{BASE}/Things({tid})"
    assert bin1["Datastreams@iot.navigationLink"] == f"{BASE}/Things({tid})/Datastreams"
    assert bin1["Locations@iot.navigationLink"] == f"{BASE}/Things({tid})/Locations"
    assert bin1["properties"] == {
        "siteId": "bin-1",
        "kind": "bin",
        "wasteType": "residual",
        "volumeLitres": 1100,
        "thresholdPercent": 80.0,
    }
    assert _get(client, f"/Things({tid})")["name"] == "Bin 1"


def test_a_location_is_the_site_position_as_geojson(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    tid = site_id(seed, "bin-2")
    locations = _get(client, f"/Things({tid})/Locations")["value"]
    assert len(locations) == 1
    loc = locations[0]
    assert loc["encodingType"] == "application/geo+json"
    assert loc["location"] == {"type": "Point", "coordinates": [12.42, 51.36]}
    assert _get(client, f"/Locations({loc['@iot.id']})/Things")["value"][0]["@iot.id"] == tid
    # a line has no position: no Location
    assert _get(client, f"/Things({site_id(seed, 'line-1')})/Locations")["value"] == []


def test_datastreams_are_one_per_device_and_quantity_with_ucum_units(client: ApiClient, seed: Seeder) -> None:
    town = seed_town(seed)
    bin_ds = _get(client, f"/Things({site_id(seed, 'bin-1')})/Datastreams")["value"]
    units = {d["name"]: d["unitOfMeasurement"]["symbol"] for d in bin_ds}
    assert units == {
        "Bin 1 fill level": "%",
        "Bin 1 distance to fill surface": "mm",
        "Bin 1 temperature": "Cel",
        "Bin 1 battery voltage": "V",
        "Bin 1 battery level": "%",
    }
    assert {d["@iot.id"] for d in bin_ds} == {public_id(seed, town.bins[0]) * 100 + k for k in range(1, 6)}
    bus = _get(client, f"/Things({site_id(seed, 'bus-1')})/Datastreams")["value"]
    on_board = next(d for d in bus if d["name"].endswith("passengers on board"))
    assert on_board["unitOfMeasurement"]["symbol"] == "{passengers}"
    assert on_board["observationType"].endswith("OM_CountObservation")
    ds = on_board["@iot.id"]
    assert _get(client, f"/Datastreams({ds})/ObservedProperty")["name"] == "passengers on board"
    assert _get(client, f"/Datastreams({ds})/Sensor")["name"] == "sensative/pax"
    assert _get(client, f"/Datastreams({ds})/Thing")["properties"]["siteId"] == "bus-1"
    assert [o["result"] for o in _get(client, f"/Datastreams({ds})/Observations")["value"]] == [17]


def test_sensors_are_the_device_models_and_lead_to_their_datastreams(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    sensors = {s["name"]: s for s in _get(client, "/Sensors")["value"]}
    assert set(sensors) == {"milesight-iot/em310-udl", "nwave/nps405", "sensative/pax"}
    em310 = sensors["milesight-iot/em310-udl"]
    assert em310["metadata"].endswith("/vendor/milesight-iot/em310-udl.yaml")
    ds = _get(client, f"/Sensors({em310['@iot.id']})/Datastreams?$count=true")
    assert ds["@iot.count"] == 10  # two bins, five quantities each


def test_observations_of_a_datastream_equal_the_stored_readings_page_by_page(client: ApiClient, seed: Seeder) -> None:
    town = seed_town(seed)
    ds = public_id(seed, town.bins[0]) * 100 + 1  # fill level
    items, links = _walk(client, f"/Datastreams({ds})/Observations?$top=5")
    stored = seed.conn.execute(
        "SELECT time, fill_pct FROM bin_levels WHERE dev_eui = %s ORDER BY time", (town.bins[0],)
    ).fetchall()
    assert [(_time(o["phenomenonTime"]), o["result"]) for o in items] == [(t, round(v, 4)) for t, v in stored]
    assert len(links) == 4
    for link in links:  # keyset paging: a token, never an offset
        query = parse_qs(urlsplit(link).query)
        assert "$skiptoken" in query and "$skip" not in query
    newest_first, _ = _walk(client, f"/Datastreams({ds})/Observations?$top=7&$orderby=phenomenonTime%20desc")
    assert newest_first == items[::-1]


def test_observation_ids_lead_back_to_the_observation_its_datastream_and_feature(
    client: ApiClient, seed: Seeder
) -> None:
    town = seed_town(seed)
    ds = public_id(seed, town.spaces[0]) * 100 + 6  # occupancy
    obs = _get(client, f"/Datastreams({ds})/Observations")["value"]
    assert [o["result"] for o in obs] == [True, False]  # truth observations are booleans
    one = _get(client, f"/Observations('{obs[1]['@iot.id']}')")
    assert one == obs[1]
    assert _get(client, f"/Observations('{obs[1]['@iot.id']}')/Datastream")["@iot.id"] == ds
    foi = _get(client, f"/Observations('{obs[1]['@iot.id']}')/FeatureOfInterest", status=404)
    assert "FeatureOfInterest" in foi["detail"]  # the space has no position of its own
    bin_obs = _get(client, f"/Datastreams({public_id(seed, town.bins[0]) * 100 + 1})/Observations?$top=1")
    foi = _get(client, "/Observations('" + bin_obs["value"][0]["@iot.id"] + "')/FeatureOfInterest")
    assert foi["feature"] == {"type": "Point", "coordinates": [12.38, 51.33]}
    _get(client, f"/Observations('{ds}-1')", status=404)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("result gt 60", [60.5, 61.0, 61.5]),
        ("result ge 61 or result lt 50.6", [50.0, 50.5, 61.0, 61.5]),
        ("not (result lt 61)", [61.0, 61.5]),
        ("result eq 55.0", [55.0]),
        ("result sub 50 mul 2 eq 49", []),  # 2 binds tighter: result - 100 eq 49 -> none
        ("(result sub 50) mul 2 eq 10", [55.0]),
    ],
)
def test_filter_on_results(client: ApiClient, seed: Seeder, query: str, expected: list[float]) -> None:
    town = seed_town(seed)
    ds = public_id(seed, town.bins[1]) * 100 + 1
    obs = _get(client, f"/Datastreams({ds})/Observations?$filter={query}")["value"]
    assert [o["result"] for o in obs] == expected


def test_filter_on_phenomenon_time_and_ids(client: ApiClient, seed: Seeder) -> None:
    town = seed_town(seed)
    ds = public_id(seed, town.bins[0]) * 100 + 1
    start = town.times[20].strftime("%Y-%m-%dT%H:%M:%SZ")
    obs = _get(client, f"/Datastreams({ds})/Observations?$filter=phenomenonTime ge {start}")["value"]
    assert [_time(o["phenomenonTime"]) for o in obs] == town.times[20:]
    both = _get(client, f"/Observations?$filter=Datastream/id eq {ds} and phenomenonTime ge {start}")["value"]
    assert both == obs
    things = _get(client, f"/Things?$filter=id eq {site_id(seed, 'bin-2')} or name eq 'Lot A'")["value"]
    assert sorted(t["name"] for t in things) == ["Bin 2", "Lot A"]


def test_filter_string_functions(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)

    def names(expr: str) -> list[str]:
        return sorted(t["name"] for t in _get(client, f"/Things?$filter={expr}")["value"])

    assert names("startswith(name, 'Bin')") == ["Bin 1", "Bin 2"]
    assert names("substringof('ot A', name)") == ["Lot A", "Lot A S000", "Lot A S001"]
    assert names("endswith(name, '001')") == ["Lot A S001"]
    assert names("tolower(name) eq 'bus 1'") == ["Bus 1"]
    assert names("properties/kind eq 'bin' and properties/wasteType eq 'paper'") == ["Bin 2"]
    assert names("length(name) eq 3") == []


def test_geo_intersects_selects_things_and_locations_inside_a_polygon(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    poly = "geography'POLYGON((12.3 51.3, 12.4 51.3, 12.4 51.35, 12.3 51.35, 12.3 51.3))'"
    things = _get(client, f"/Things?$filter=geo.intersects(Locations/location, {poly})")["value"]
    assert sorted(t["name"] for t in things) == ["Bin 1", "Lot A"]
    locations = _get(client, f"/Locations?$filter=st_within(location, {poly})")["value"]
    assert sorted(loc["name"] for loc in locations) == ["Bin 1", "Lot A"]
    at = _get(client, "/Locations?$filter=geo.intersects(location, geography'POINT(12.42 51.36)')")["value"]
    assert [loc["name"] for loc in at] == ["Bin 2"]


def test_top_skip_orderby_and_count_on_things(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    all_names = sorted(t["name"] for t in _get(client, "/Things")["value"])
    body = _get(client, "/Things?$orderby=name desc&$top=2&$skip=1&$count=true")
    assert [t["name"] for t in body["value"]] == sorted(all_names, reverse=True)[1:3]
    assert body["@iot.count"] == len(all_names)
    nxt = parse_qs(urlsplit(body["@iot.nextLink"]).query)
    assert nxt["$skip"] == ["3"] and nxt["$top"] == ["2"]
    walked, _ = _walk(client, "/Things?$orderby=name&$top=3")
    assert [t["name"] for t in walked] == all_names


def test_select_keeps_only_the_named_properties(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    body = _get(client, "/Things?$select=id,name&$top=1")
    assert set(body["value"][0]) == {"@iot.id", "name"}
    body = _get(client, "/Datastreams?$select=unitOfMeasurement,Thing&$top=1")
    assert set(body["value"][0]) == {"unitOfMeasurement", "Thing@iot.navigationLink"}


def test_expand_with_nested_top_orderby_select_and_expand(client: ApiClient, seed: Seeder) -> None:
    town = seed_town(seed)
    tid = site_id(seed, "bin-1")
    q = (
        "$expand=Datastreams($filter=ObservedProperty/name eq 'fill level';"
        "$expand=Observations($top=2;$orderby=phenomenonTime desc;$select=result),ObservedProperty)"
    )
    thing = _get(client, f"/Things({tid})?{q}")
    (ds,) = thing["Datastreams"]
    assert ds["ObservedProperty"]["name"] == "fill level"
    assert ds["Observations"] == [{"result": 67.5}, {"result": 65.0}]
    nxt = parse_qs(urlsplit(ds["Observations@iot.nextLink"]).query)
    assert nxt["$skip"] == ["2"] and nxt["$orderby"] == ["phenomenonTime desc"]
    path_form = _get(client, f"/Things({tid})?$expand=Datastreams/Thing")
    assert {d["Thing"]["@iot.id"] for d in path_form["Datastreams"]} == {tid}
    obs = _get(client, "/Observations?$top=3&$expand=Datastream($select=id)")["value"]
    assert all(o["Datastream"]["@iot.id"] // 100 in {public_id(seed, d) for d in town.bins} for o in obs)


def test_property_value_and_ref_paths(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    tid = site_id(seed, "bin-1")
    assert _get(client, f"/Things({tid})/name") == {"name": "Bin 1"}
    r = client.get(f"{URL}/Things({tid})/name/$value")
    assert (r.status_code, r.text, r.headers["content-type"].split(";")[0]) == (200, "Bin 1", "text/plain")
    assert _get(client, f"/Things({tid})/$ref") == {"@iot.selfLink": f"{BASE}/Things({tid})"}
    refs = _get(client, f"/Things({tid})/Datastreams/$ref")["value"]
    assert len(refs) == 5 and all(set(r) == {"@iot.selfLink"} for r in refs)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("$filter=name eq", "unexpected end of expression"),
        ("$filter=name eq 'x", "unexpected character"),
        ("$filter=(name eq 'x'", "expected ')'"),
        ("$filter=name eq 5", "cannot compare a text with a number"),
        ("$filter=nope eq 1", "unknown property 'nope'"),
        ("$filter=name", "must be a condition"),
        ("$filter=frobnicate(name)", "unknown function 'frobnicate'"),
        ("$filter=geo.intersects(location, geography'LINESTRING(1 2, 3 4)')", "only WKT POINT and POLYGON"),
        ("$filter=id eq 1 and", "unexpected end of expression"),
        ("$filter=id eq eq 1", "operator 'eq' needs an operand"),
        ("$top=-1", "$top must be a non-negative integer"),
        ("$count=yes", "$count is true or false"),
        ("$orderby=name sideways", "$orderby items"),
        ("$orderby=location", "cannot order by 'location'"),
        ("$select=nope", "unknown properties of Thing: nope"),
        ("$expand=Nope", "no navigation property 'Nope'"),
        ("$expand=Datastreams($top=x)", "$top must be"),
        ("$frobnicate=1", "unknown query option $frobnicate"),
        ("$skiptoken=abc", "$skiptoken pages only Observations"),
    ],
)
def test_a_bad_query_option_is_400_with_a_message(client: ApiClient, query: str, message: str) -> None:
    r = client.get(f"{URL}/Things?{query}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert message in r.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/Nothing",
        "/Things(999)",
        "/Things(abc)",
        "/Things('1')",
        "/Things(1)/Nope",
        "/Things/Datastreams",
        "/Observations(5)",
        "/Observations('x')",
        "/Datastreams(101)/Thing(3)",
        "/Things(1)/name/$value/x",
    ],
)
def test_an_unknown_resource_is_404(client: ApiClient, seed: Seeder, path: str) -> None:
    seed_town(seed)
    r = client.get(URL + path)
    assert r.status_code == 404, r.text
    assert r.json()["detail"]


def test_filter_text_reaches_sql_only_as_values(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    body = _get(client, "/Things?$filter=name eq '''; DROP TABLE sites; --'")
    assert body["value"] == []
    assert seed.conn.execute("SELECT count(*) FROM sites").fetchone()[0] > 0  # type: ignore[index]


def test_observations_across_datastreams_page_by_key_and_count(client: ApiClient, seed: Seeder) -> None:
    seed_town(seed)
    items, links = _walk(client, "/Observations?$top=40")
    stored = seed.conn.execute(
        """SELECT (SELECT count(*) FROM bin_levels WHERE fill_pct IS NOT NULL)
                + (SELECT count(*) FROM bin_levels WHERE distance_mm IS NOT NULL)
                + (SELECT count(*) FROM bin_levels WHERE battery_v IS NOT NULL)
                + (SELECT count(*) FROM bin_levels WHERE battery_pct IS NOT NULL)
                + (SELECT count(*) FROM parking_events) + 3"""  # occupancy; the bus's in, out, on board
    ).fetchone()[0]  # type: ignore[index]
    assert len(items) == stored == _get(client, "/Observations?$count=true&$top=0")["@iot.count"]
    assert len({o["@iot.id"] for o in items}) == len(items)
    keys = [(_time(o["phenomenonTime"]), o["@iot.id"]) for o in items]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert all("$skiptoken" in link for link in links)
    assert datetime.now(UTC) > keys[-1][0]


def test_every_entity_set_declares_the_fields_it_writes(client: ApiClient, seed: Seeder) -> None:
    from stadtpuls.api.sta import ENTITY_SETS

    seed_town(seed)
    for name, es in ENTITY_SETS.items():
        for item in _get(client, f"/{name}?$top=3")["value"]:
            fields = {k for k in item if not k.startswith("@iot.") and "@iot." not in k}
            assert fields == set(es.fields), name


def test_service_root_announces_the_mqtt_endpoints_when_configured(
    make_client: Any, settings: Any, clean_db: str
) -> None:
    from apitest import make_settings

    client = make_client(make_settings(clean_db, sta_mqtt_endpoints=["mqtt://broker.example:1883"]))
    body = _get(client, "")
    receive = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"
    assert receive in body["serverSettings"]["conformance"]
    assert body["serverSettings"][receive] == {"endpoints": ["mqtt://broker.example:1883"]}
    plain = make_client(settings)
    assert receive not in _get(plain, "")["serverSettings"]["conformance"]


def test_answers_are_kept_per_url_for_the_cache_interval(
    clean_db: str, make_client: Callable[..., ApiClient], seed: Seeder
) -> None:
    town = seed_town(seed)
    ds = public_id(seed, town.bins[0]) * 100 + 1  # fill level
    url = f"/Datastreams({ds})/Observations?$top=1&$orderby=phenomenonTime%20desc"

    def newest(client: ApiClient) -> float:
        return float(_get(client, url)["value"][0]["result"])

    cached = make_client(make_settings(clean_db, api_cache_ttl=60))
    uncached = make_client(make_settings(clean_db, api_cache_ttl=0))
    before = newest(cached)
    assert newest(uncached) == before
    seed.conn.execute(
        "INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct) VALUES (now(), %s, %s, 99.5)",
        (town.bins[0], "bin-1"),
    )
    assert newest(uncached) == 99.5  # the store has the new reading
    assert newest(cached) == before  # this app answers the same URL from its cache within the interval
    assert _get(cached, url.replace("$top=1", "$top=2"))["value"][0]["result"] == 99.5  # another URL is asked anew
