from __future__ import annotations

from apitest import OP, ApiClient, Seeder


def test_site_crud_and_live_lots_follow(client: ApiClient) -> None:
    r = client.post(
        "/api/v1/sites",
        headers=OP,
        json={"site_id": "lot-x", "kind": "lot", "name": "Markt", "capacity": 40, "lat": 51.3, "lon": 12.3},
    )
    assert r.status_code == 201, r.text
    assert r.json()["capacity"] == 40 and r.json()["params"] == {}
    assert client.get("/api/v1/parking/lots/lot-x").json()["capacity"] == 40
    r = client.patch("/api/v1/sites/lot-x", headers=OP, json={"capacity": 45, "params": {"operator": "city"}})
    assert r.status_code == 200 and r.json()["capacity"] == 45 and r.json()["name"] == "Markt"
    assert client.get("/api/v1/sites/lot-x", headers=OP).json()["params"] == {"operator": "city"}
    assert client.delete("/api/v1/sites/lot-x", headers=OP).status_code == 204
    assert client.get("/api/v1/sites/lot-x", headers=OP).status_code == 404
    assert client.get("/api/v1/parking/lots/lot-x").status_code == 404


def test_site_list_filter_and_pages(client: ApiClient, seed: Seeder) -> None:
    seed.lot("lot-a", 3)
    seed.site("bin-1", "bin", name="Am Markt")
    assert client.get("/api/v1/sites", headers=OP).json()["count"] == 5
    spaces = client.get("/api/v1/sites", headers=OP, params={"kind": "space", "limit": 2}).json()
    assert spaces["count"] == 3 and len(spaces["data"]) == 2
    assert client.get("/api/v1/sites", headers=OP, params={"parent_id": "lot-a"}).json()["count"] == 3
    assert client.get("/api/v1/sites", headers=OP, params={"q": "markt"}).json()["data"][0]["site_id"] == "bin-1"
    assert client.get("/api/v1/sites", headers=OP, params={"kind": "tree"}).status_code == 422


def test_site_delete_with_children_needs_cascade(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-a", 2)
    r = client.delete("/api/v1/sites/lot-a", headers=OP)
    assert r.status_code == 409 and "2 child sites" in r.json()["detail"]
    assert client.delete("/api/v1/sites/lot-a", headers=OP, params={"cascade": "true"}).status_code == 204
    assert client.get("/api/v1/sites", headers=OP).json()["count"] == 0
    assert client.get(f"/api/v1/devices/{devs[0]}", headers=OP).json()["site_id"] is None  # device stays
    assert client.delete("/api/v1/sites/lot-a", headers=OP).status_code == 404


def test_site_bad_input(client: ApiClient, seed: Seeder) -> None:
    seed.site("bin-1", "bin", depth_mm=1200, full_mm=200)
    cases = [
        {"site_id": "s 1", "kind": "lot"},
        {"site_id": "s1", "kind": "castle"},
        {"site_id": "s1", "kind": "space", "parent_id": "missing"},
        {"site_id": "s1", "kind": "bin", "depth_mm": 500, "full_mm": 600},
        {"site_id": "s1", "kind": "bin", "threshold_pct": 120},
        {"site_id": "s1", "kind": "lot", "parent_id": "s1"},
    ]
    for body in cases:
        r = client.post("/api/v1/sites", headers=OP, json=body)
        assert r.status_code == 422, (body, r.text)
    assert client.post("/api/v1/sites", headers=OP, json={"site_id": "bin-1", "kind": "bin"}).status_code == 409
    assert client.patch("/api/v1/sites/bin-1", headers=OP, json={"full_mm": 1300}).status_code == 422
    assert client.patch("/api/v1/sites/bin-1", headers=OP, json={"kind": None}).status_code == 422
    assert client.patch("/api/v1/sites/bin-1", headers=OP, json={"parent_id": "bin-1"}).status_code == 422
    assert client.patch("/api/v1/sites/none", headers=OP, json={"name": "x"}).status_code == 404


def test_site_open_data_facts_reach_the_parkapi_feed(client: ApiClient) -> None:
    r = client.post(
        "/api/v1/sites",
        headers=OP,
        json={
            "site_id": "lot-y",
            "kind": "lot",
            "name": "Hafen",
            "capacity": 20,
            "lat": 51.3,
            "lon": 12.3,
            "lot_type": "UNDERGROUND",
            "opening_hours": "24/7",
            "park_and_ride": ["TRAIN"],
        },
    )
    assert r.status_code == 201, r.text
    site = r.json()
    assert site["public_id"] >= 1 and site["lot_type"] == "UNDERGROUND" and site["park_and_ride"] == ["TRAIN"]
    r = client.patch("/api/v1/sites/lot-y", headers=OP, json={"purpose": "BIKE", "address": "Kai 2, 04109 Leipzig"})
    assert r.status_code == 200 and r.json()["purpose"] == "BIKE" and r.json()["lot_type"] == "UNDERGROUND"
    (item,) = client.get("/api/public/v3/parking-sites").json()["items"]
    assert (item["id"], item["type"], item["purpose"], item["address"]) == (
        site["public_id"],
        "UNDERGROUND",
        "BIKE",
        "Kai 2, 04109 Leipzig",
    )
    for bad in ({"lot_type": "GARAGE"}, {"opening_hours": "whenever"}, {"park_and_ride": ["FERRY"]}):
        assert client.patch("/api/v1/sites/lot-y", headers=OP, json=bad).status_code == 422, bad


def test_site_and_device_names_with_control_characters_are_refused(client: ApiClient) -> None:
    bad = "Papier\r=cmd|' /C calc'!A0"
    r = client.post("/api/v1/sites", headers=OP, json={"site_id": "bin-x", "kind": "bin", "name": bad})
    assert r.status_code == 422
    assert "control characters" in r.text and "name" in r.text
    assert client.get("/api/v1/sites/bin-x", headers=OP).status_code == 404
    assert client.post("/api/v1/sites", headers=OP, json={"site_id": "bin-x", "kind": "bin"}).status_code == 201
    assert client.patch("/api/v1/sites/bin-x", headers=OP, json={"waste_type": "paper\x1b"}).status_code == 422
    device = {"dev_eui": "a1b2c3d4e5f60711", "codec": "nwave/nps405", "name": "Platz\t=1"}
    r = client.post("/api/v1/devices", headers=OP, json=device)
    assert r.status_code == 422 and "control characters" in r.text
    assert client.get("/api/v1/devices/a1b2c3d4e5f60711", headers=OP).status_code == 404
