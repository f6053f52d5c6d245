from __future__ import annotations

import re
from typing import Any

import pytest
from apitest import ADMIN, OP, ApiClient, Seeder, make_settings

from stadtpuls.api.auth import KeyRing, hash_secret, new_key, parse_key, verify_secret
from stadtpuls.api.main import create_app

SAMPLE = {
    "dev_eui": "00000000000000aa",
    "key_id": "0123456789ab",
    "site_id": "nope",
    "parking_site_id": "999999",
    "path": "Things",
    "entity_id": "urn:ngsi-ld:OffStreetParking:nope",
    "lot_id": "nope",
    "line_id": "nope",
    "alert_id": "1",
    "rule_id": "nope",
    "notification_id": "1",
    "slug": "nope",
}


def _operations() -> list[tuple[str, str, bool]]:
    """(method, path, needs a key) of every operation in the OpenAPI schema."""
    schema = create_app(make_settings("postgresql://unused@127.0.0.1:1/x")).openapi()
    out = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
            out.append((method.upper(), concrete, bool(op.get("security"))))
    return out


def _guarded_routes() -> list[tuple[str, str, str]]:
    """(method, path, role): key and town management need the admin role, every other guarded route the operator
    role."""
    return [
        (m, p, "admin" if p.startswith(("/api/v1/keys", "/api/v1/tenants")) else "operator")
        for m, p, guarded in _operations()
        if guarded
    ]


GUARDED = _guarded_routes()


def test_every_api_route_outside_parking_buses_the_map_and_the_district_is_guarded() -> None:
    ops = _operations()
    assert len(GUARDED) >= 20
    for method, path, guarded in ops:
        if path.startswith("/api/v1/"):
            public = path.startswith(("/api/v1/parking", "/api/v1/buses", "/api/v1/map", "/api/v1/district"))
            assert public != guarded, (method, path)
        else:
            assert guarded == (path == "/metrics"), path  # /metrics: an operator key, or the internal port


@pytest.mark.parametrize(("method", "path", "role"), GUARDED, ids=[f"{m} {p}" for m, p, _ in GUARDED])
def test_guarded_route_refuses_missing_and_wrong_keys(client: ApiClient, method: str, path: str, role: str) -> None:
    body: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": "sp_0123456789ab_" + "x" * 43}, {"X-API-Key": ""}):
        r = client.request(method, path, headers=headers, **body)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"] == "ApiKey"
    r = client.request(method, path, headers=OP, **body)
    if role == "admin":
        assert r.status_code == 403 and "admin" in r.json()["detail"]
    else:
        assert r.status_code not in (401, 403), r.text
    r = client.request(method, path, headers=ADMIN, **body)
    assert r.status_code not in (401, 403), r.text


def test_public_routes_need_no_key(client: ApiClient, seed: Seeder) -> None:
    for path in (
        "/api/v1/parking/lots",
        "/api/v1/parking/lots.geojson",
        "/api/v1/buses/lines",
        "/api/v1/buses/vehicles",
        "/health",
    ):
        assert client.get(path).status_code == 200, path


def test_key_created_in_the_database_works_until_revoked(client: ApiClient) -> None:
    r = client.post("/api/v1/keys", headers=ADMIN, json={"name": "depot tablet", "role": "operator"})
    assert r.status_code == 201
    created = r.json()
    key = created["key"]
    assert parse_key(key) is not None and created["role"] == "operator"
    assert client.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/api/v1/keys", headers={"X-API-Key": key}).status_code == 403
    listed = client.get("/api/v1/keys", headers=ADMIN).json()
    assert [k["key_id"] for k in listed["data"]] == [created["key_id"]]
    assert "key" not in listed["data"][0] and "key_hash" not in listed["data"][0]
    assert client.delete(f"/api/v1/keys/{created['key_id']}", headers=ADMIN).status_code == 200
    assert client.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 401
    assert client.delete(f"/api/v1/keys/{created['key_id']}", headers=ADMIN).status_code == 404


def test_stored_key_is_only_a_salted_hash(client: ApiClient, seed: Seeder) -> None:
    key = client.post("/api/v1/keys", headers=ADMIN, json={"name": "x", "role": "admin"}).json()["key"]
    stored = seed.conn.execute("SELECT key_hash FROM api_keys").fetchone()[0]
    secret = parse_key(key)[1]  # type: ignore[index]
    assert secret not in stored and key not in stored
    assert stored.startswith("sha256$") and verify_secret(secret, stored)
    assert not verify_secret(secret + "x", stored)


def test_key_hashes_differ_by_salt_and_bad_hashes_never_verify() -> None:
    assert hash_secret("s") != hash_secret("s")
    assert verify_secret("s", hash_secret("s", b"1" * 16))
    for stored in ("", "sha256$zz$00", "md5$00$00", "sha256$00"):
        assert not verify_secret("s", stored)
    a, b = new_key(), new_key()
    assert a.key != b.key and a.key_id != b.key_id


def test_a_keyring_without_settings_keys_accepts_no_plain_key() -> None:
    ring = KeyRing(None, None)
    assert ring._static == []


def test_admin_key_from_settings_and_missing_operator_key(make_client: Any, clean_db: str) -> None:
    c = make_client(make_settings(clean_db, operator_key=None))
    assert c.get("/api/v1/devices", headers=OP).status_code == 401
    assert c.get("/api/v1/keys", headers=ADMIN).status_code == 200
