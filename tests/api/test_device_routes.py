from __future__ import annotations

from datetime import timedelta

from apitest import OP, ApiClient, Seeder, hours_ago, now

DEV = "70B3D5FFFE000001"


def _create(client: ApiClient, **fields: object) -> dict:
    body = {"dev_eui": DEV, "codec": "nwave/nps405", "name": "space sensor", **fields}
    r = client.post("/api/v1/devices", headers=OP, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_device_crud(client: ApiClient, seed: Seeder) -> None:
    seed.site("lot-a", "lot", capacity=1)
    seed.site("lot-a-s1", "space", parent_id="lot-a")
    created = _create(client, site_id="lot-a-s1", params={"offset": 3}, report_interval_s=600)
    assert created["dev_eui"] == DEV.lower() and created["params"] == {"offset": 3}
    assert created["last_seen"] is None
    got = client.get(f"/api/v1/devices/{DEV}", headers=OP).json()
    assert got == created
    r = client.patch(f"/api/v1/devices/{DEV.lower()}", headers=OP, json={"name": "renamed", "lat": 51.1})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["lat"], r.json()["site_id"]) == ("renamed", 51.1, "lot-a-s1")
    assert client.patch(f"/api/v1/devices/{DEV}", headers=OP, json={"site_id": None}).json()["site_id"] is None
    assert client.delete(f"/api/v1/devices/{DEV}", headers=OP).status_code == 204
    assert client.get(f"/api/v1/devices/{DEV}", headers=OP).status_code == 404
    assert client.delete(f"/api/v1/devices/{DEV}", headers=OP).status_code == 404
    assert client.patch(f"/api/v1/devices/{DEV}", headers=OP, json={"name": "x"}).status_code == 404


def test_device_create_conflicts_and_bad_input(client: ApiClient, seed: Seeder) -> None:
    _create(client)
    r = client.post("/api/v1/devices", headers=OP, json={"dev_eui": DEV, "codec": "nwave/nps405"})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    bad = [
        {"dev_eui": "xyz", "codec": "nwave/nps405"},
        {"dev_eui": "70b3d5fffe000002", "codec": "acme/unknown"},
        {"dev_eui": "70b3d5fffe000002", "codec": "nwave/nps405", "site_id": "no-such-site"},
        {"dev_eui": "70b3d5fffe000002", "codec": "nwave/nps405", "lat": 123},
        {"dev_eui": "70b3d5fffe000002", "codec": "nwave/nps405", "report_interval_s": 0},
        {"dev_eui": "70b3d5fffe000002", "codec": "nwave/nps405", "colour": "red"},
    ]
    for body in bad:
        r = client.post("/api/v1/devices", headers=OP, json=body)
        assert r.status_code == 422, (body, r.text)
    r = client.post("/api/v1/devices", headers={**OP, "Content-Type": "application/json"}, content=b"{nope")
    assert r.status_code == 422
    assert client.patch(f"/api/v1/devices/{DEV}", headers=OP, json={"codec": None}).status_code == 422
    assert client.get("/api/v1/devices/not-hex", headers=OP).status_code == 422


def test_device_list_filters_and_pages(client: ApiClient, seed: Seeder) -> None:
    seed.site("bin-1", "bin")
    for k in range(5):
        seed.device("bin-1" if k < 2 else None, codec="dragino/ldds75" if k % 2 else "nwave/nps405", name=f"sensor {k}")
    page = client.get("/api/v1/devices", headers=OP, params={"limit": 2, "offset": 1}).json()
    assert page["count"] == 5 and len(page["data"]) == 2
    everything = client.get("/api/v1/devices", headers=OP).json()["data"]
    assert [d["dev_eui"] for d in everything] == sorted(d["dev_eui"] for d in everything)
    assert page["data"][0]["dev_eui"] == everything[1]["dev_eui"]
    assert client.get("/api/v1/devices", headers=OP, params={"site_id": "bin-1"}).json()["count"] == 2
    assert client.get("/api/v1/devices", headers=OP, params={"codec": "dragino/ldds75"}).json()["count"] == 2
    assert client.get("/api/v1/devices", headers=OP, params={"q": "sensor 3"}).json()["count"] == 1
    assert client.get("/api/v1/devices", headers=OP, params={"q": "%"}).json()["count"] == 0
    assert client.get("/api/v1/devices", headers=OP, params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/devices", headers=OP, params={"offset": -1}).status_code == 422


def test_device_uplinks_and_radio_health(client: ApiClient, seed: Seeder) -> None:
    dev = seed.device(None, interval=3600)
    for k in range(6):
        seed.uplink(dev, hours_ago(5 - k), f_cnt=k, rssi=-100.0 - k, snr=6.0 - k)
    seed.uplink(dev, hours_ago(40), f_cnt=0, rssi=-50.0)  # older than a day
    seed.conn.execute(
        "INSERT INTO fcnt_gaps (time, dev_eui, f_cnt_from, f_cnt_to) VALUES (%s, %s, 7, 9)", (hours_ago(2), dev)
    )
    ups = client.get(f"/api/v1/devices/{dev}/uplinks", headers=OP, params={"limit": 3}).json()
    assert ups["count"] == 3 and [u["f_cnt"] for u in ups["data"]] == [5, 4, 3]
    assert ups["data"][0]["payload_hex"] == "0102"
    radio = client.get(f"/api/v1/devices/{dev}/radio", headers=OP).json()
    assert radio["uplinks_24h"] == 6 and radio["expected_24h"] == 24.0
    assert radio["rssi_min"] == -105.0 and abs(radio["rssi_avg"] - -102.5) < 1e-6
    assert abs(radio["snr_avg"] - 3.5) < 1e-6
    assert radio["missing_f_cnt_24h"] == 3 and radio["silent"] is False
    seed.conn.execute(
        "INSERT INTO fcnt_gaps_closed (dev_eui, f_cnt, gap_time) VALUES (%s, 8, %s), (%s, 9, %s)",
        (dev, hours_ago(3), dev, hours_ago(3)),
    )
    gaps = client.get(f"/api/v1/devices/{dev}/gaps", headers=OP).json()
    assert [(g["f_cnt_from"], g["f_cnt_to"], g["missing"]) for g in gaps["data"]] == [(7, 9, 3)]
    assert gaps["count"] == 1 and gaps["closed_f_cnt_24h"] == 2
    assert client.get("/api/v1/devices/00000000000000ff/gaps", headers=OP).status_code == 404
    quiet = seed.device(None, interval=600)
    seed.uplink(quiet, now() - timedelta(hours=1))
    assert client.get(f"/api/v1/devices/{quiet}/radio", headers=OP).json()["silent"] is True
    assert client.get("/api/v1/devices/00000000000000ff/radio", headers=OP).status_code == 404
    assert client.get("/api/v1/devices/00000000000000ff/uplinks", headers=OP).status_code == 404
    assert client.get(f"/api/v1/devices/{dev}/uplinks", headers=OP, params={"limit": 5000}).status_code == 422


CSV = """dev_eui,codec,name,site_id,report_interval_s,site_kind,site_name,site_parent_id,site_capacity
,,,lot-9,,lot,Lot Nine,,2
70b3d5fffe0000a1,nwave/nps405,space 1,lot-9-s1,3600,space,,lot-9,
70b3d5fffe0000a2,nwave/nps405,space 2,lot-9-s2,3600,space,,lot-9,
70b3d5fffe0000a3,acme/unknown,space 3,lot-9-s3,3600,space,,lot-9,
"""


def test_bulk_import_csv_dry_run_then_apply_with_row_errors(client: ApiClient, seed: Seeder) -> None:
    url = "/api/v1/devices/import"
    headers = {**OP, "Content-Type": "text/csv"}
    dry = client.post(url, headers=headers, params={"dry_run": "true"}, content=CSV)
    assert dry.status_code == 200, dry.text
    report = dry.json()
    assert report["dry_run"] is True and report["devices_created"] == 2 and report["sites_created"] == 4
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(5, "codec")]
    assert client.get("/api/v1/devices", headers=OP).json()["count"] == 0
    done = client.post(url, headers=headers, params={"dry_run": "false"}, content=CSV).json()
    assert done["dry_run"] is False and done["devices_created"] == 2
    again = client.post(url, headers=headers, params={"dry_run": "false"}, content=CSV).json()
    assert again["devices_created"] == 0 and again["unchanged"] == 6
    lot = client.get("/api/v1/parking/lots/lot-9").json()
    assert lot["capacity"] == 2 and lot["unknown"] == 2


def test_bulk_import_yaml_and_bad_bodies(client: ApiClient, seed: Seeder) -> None:
    url = "/api/v1/devices/import"
    yaml_doc = (
        "sites:\n  - {site_id: bin-7, kind: bin, depth_mm: 1200, full_mm: 200}\n"
        "devices:\n  - {dev_eui: 24E124FFFE000007, codec: milesight-iot/em310-udl, site_id: bin-7}\n"
    )
    r = client.post(url, headers={**OP, "Content-Type": "application/yaml"}, content=yaml_doc)
    assert r.status_code == 200 and r.json()["devices_created"] == 1 and r.json()["errors"] == []
    assert client.get("/api/v1/devices/24e124fffe000007", headers=OP).json()["site_id"] == "bin-7"
    r = client.post(url, headers={**OP, "Content-Type": "application/octet-stream"}, content=b"x")
    assert r.status_code == 415
    r = client.post(url, headers={**OP, "Content-Type": "application/yaml"}, content="sites: [unclosed")
    assert r.status_code == 422 and "YAML" in r.json()["detail"]
    r = client.post(url, headers={**OP, "Content-Type": "text/csv"}, content=b"\xff\xfe")
    assert r.status_code == 422
    r = client.post(url, headers=OP, params={"format": "csv"}, content="name\nx\n")
    assert r.status_code == 422 and "dev_eui" in r.json()["detail"]
