"""Towns through the API: the admin's tenant routes with their validation, keys of a town, and a town's pickup plan
with its own depot, service days, round start hour and time zone (the hub's settings where it has none)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apitest import ADMIN, OP, ApiClient, Seeder, hours_ago

TOWN = {
    "slug": "nordstadt",
    "name": "Nordstadt",
    "timezone": "Europe/London",
    "depots": [{"name": "Hof Nord", "lat": 53.5, "lon": 10.0}, {"name": "Hof Süd", "lat": 53.4, "lon": 10.1}],
    "service_days": [5, 5, 2],
    "pickup_start_hour": 5.5,
    "brand_name": "Nordstadt live",
    "logo_url": "https://example.org/nord.svg",
    "colour": "#1a2B3c",
}


def test_the_admin_adds_lists_and_changes_towns(client: ApiClient) -> None:
    assert client.get("/api/v1/t/nordstadt/sites", headers=ADMIN).status_code == 404  # no such town (yet)
    r = client.post("/api/v1/tenants", headers=ADMIN, json=TOWN)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["service_days"] == [2, 5] and made["depots"][0]["name"] == "Hof Nord" and made["db_role"] is None
    # served at once: the app's cache of towns was cleared
    assert client.get("/api/v1/t/nordstadt/sites", headers=ADMIN).status_code == 200
    listed = client.get("/api/v1/tenants", headers=ADMIN).json()
    assert [t["slug"] for t in listed["data"]] == ["default", "nordstadt"] and listed["count"] == 2
    assert [t["slug"] for t in client.get("/api/v1/t/nordstadt/tenants", headers=ADMIN).json()["data"]] == ["nordstadt"]
    r = client.patch("/api/v1/tenants/nordstadt", headers=ADMIN, json={"colour": None, "name": "Nordstadt (Elbe)"})
    assert r.status_code == 200, r.text
    assert (r.json()["colour"], r.json()["name"], r.json()["timezone"]) == (None, "Nordstadt (Elbe)", "Europe/London")
    assert client.post("/api/v1/tenants", headers=ADMIN, json=TOWN).status_code == 409
    assert client.patch("/api/v1/tenants/nowhere", headers=ADMIN, json={"name": "x"}).status_code == 404
    assert client.get("/api/v1/tenants", headers=OP).status_code == 403
    assert client.post("/api/v1/tenants", headers=OP, json={**TOWN, "slug": "x"}).status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "Upper"}, "slug"),
        ({"slug": "-x"}, "slug"),
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"depots": [{"name": "x", "lat": 91, "lon": 0}]}, "depots"),
        ({"depots": [{"name": "x", "lat": 50}]}, "depots"),
        ({"service_days": []}, "service_days"),
        ({"service_days": [7]}, "service_days"),
        ({"pickup_start_hour": 24}, "pickup_start_hour"),
        ({"brand_name": "x\ty"}, "brand_name"),
        ({"logo_url": "http://example.org/x.png"}, "logo_url"),
        ({"logo_url": "/x y.png"}, "logo_url"),
        ({"colour": "red"}, "colour"),
        ({"db_role": "postgres"}, "db_role"),
    ],
)
def test_a_bad_town_field_is_a_clear_422(client: ApiClient, change: dict[str, Any], field: str) -> None:
    r = client.post("/api/v1/tenants", headers=ADMIN, json={**TOWN, **change})
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    if field != "slug":
        client.post("/api/v1/tenants", headers=ADMIN, json={"slug": "v", "name": "V"})
        r = client.patch("/api/v1/tenants/v", headers=ADMIN, json=change)
        assert r.status_code == 422 and field in r.json()["detail"], r.text
    assert client.get("/api/v1/tenants", headers=ADMIN).json()["count"] in (1, 2)


def test_null_name_is_refused(client: ApiClient) -> None:
    r = client.patch("/api/v1/tenants/default", headers=ADMIN, json={"name": None})
    assert r.status_code == 422 and "name" in r.json()["detail"]


def test_a_key_of_a_town_sees_that_town_and_its_tenant_must_exist(client: ApiClient, seed: Seeder) -> None:
    assert client.post("/api/v1/keys", headers=ADMIN, json={"name": "x", "tenant": "nowhere"}).status_code == 422
    assert client.post("/api/v1/keys", headers=ADMIN, json={"name": "x", "tenant": "Bad Slug"}).status_code == 422
    client.post("/api/v1/tenants", headers=ADMIN, json={"slug": "nordstadt", "name": "Nordstadt"})
    r = client.post("/api/v1/t/nordstadt/keys", headers=ADMIN, json={"name": "depot tablet"})
    assert r.status_code == 201 and r.json()["tenant"] == "nordstadt"
    key = {"X-API-Key": r.json()["key"]}
    seed.site("n-bin", "bin")
    seed.site("d-bin", "bin")
    seed.conn.execute("UPDATE sites SET tenant = 'nordstadt' WHERE site_id = 'n-bin'")
    assert [s["site_id"] for s in client.get("/api/v1/sites", headers=key).json()["data"]] == ["n-bin"]
    assert [s["site_id"] for s in client.get("/api/v1/sites", headers=OP).json()["data"]] == ["d-bin"]
    default_key = client.post("/api/v1/keys", headers=ADMIN, json={"name": "y"}).json()
    assert default_key["tenant"] == "default"
    listed = {k["key_id"]: k["tenant"] for k in client.get("/api/v1/keys", headers=ADMIN).json()["data"]}
    assert listed == {r.json()["key_id"]: "nordstadt", default_key["key_id"]: "default"}
    # a town's admin path revokes only that town's keys
    assert client.delete(f"/api/v1/t/nordstadt/keys/{default_key['key_id']}", headers=ADMIN).status_code == 404
    assert client.delete(f"/api/v1/keys/{default_key['key_id']}", headers=ADMIN).status_code == 200


def _bin(seed: Seeder, site: str, town: str, lat: float, lon: float) -> None:
    dev = seed.bin(site, lat=lat, lon=lon)
    seed.levels(dev, [(hours_ago(h), 95.0 - h / 2) for h in (40, 30, 20, 10, 2)])
    seed.conn.execute("UPDATE sites SET tenant = %s WHERE site_id = %s", (town, site))
    seed.conn.execute("UPDATE devices SET tenant = %s WHERE dev_eui = %s", (town, dev))


def test_a_towns_pickup_plan_uses_its_depot_days_start_hour_and_time_zone(client: ApiClient, seed: Seeder) -> None:
    assert client.post("/api/v1/tenants", headers=ADMIN, json=TOWN).status_code == 201
    assert client.post("/api/v1/tenants", headers=ADMIN, json={"slug": "plain", "name": "Plain"}).status_code == 201
    _bin(seed, "n-bin-1", "nordstadt", 53.51, 10.01)
    _bin(seed, "p-bin-1", "plain", 51.34, 12.38)
    keys = {
        t: {"X-API-Key": client.post("/api/v1/keys", headers=ADMIN, json={"name": t, "tenant": t}).json()["key"]}
        for t in ("nordstadt", "plain")
    }
    plan = client.get("/api/v1/waste/pickups", headers=keys["nordstadt"]).json()
    assert plan["depot"] == {"lat": 53.5, "lon": 10.0}
    assert datetime.fromisoformat(plan["date"]).weekday() in (2, 5)
    start = datetime.fromisoformat(plan["start"]).astimezone(ZoneInfo("Europe/London"))
    assert (start.hour, start.minute) == (5, 30)
    assert [s["site_id"] for s in plan["data"]] == ["n-bin-1"]
    # the same under the town's prefix with the admin key
    assert client.get("/api/v1/t/nordstadt/waste/pickups", headers=ADMIN).json()["depot"] == plan["depot"]
    # a town without its own fields plans with the hub's settings
    hub = client.ctx.settings
    plain = client.get("/api/v1/waste/pickups", headers=keys["plain"]).json()
    assert plain["depot"] == {"lat": hub.depot_lat, "lon": hub.depot_lon}
    assert datetime.fromisoformat(plain["date"]).weekday() in hub.service_days
    start = datetime.fromisoformat(plain["start"]).astimezone(ZoneInfo(hub.timezone))
    assert start.hour + start.minute / 60 == hub.pickup_start_hour
    assert [s["site_id"] for s in plain["data"]] == ["p-bin-1"]
    # another town's bin cannot be pinned: it is not one of the plan's bins
    r = client.get("/api/v1/waste/pickups?pin=n-bin-1", headers=keys["plain"])
    assert r.status_code == 422 and "n-bin-1" in r.json()["detail"]
