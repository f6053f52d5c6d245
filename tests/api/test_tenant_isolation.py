"""Issue 18's isolation proof: an operator key of town A reads and changes nothing of town B.

Two towns, each with bins, a lot with a space, devices, readings, dead letters, alerts with notifications and keys.
Every authenticated route of the app (enumerated from ``app.routes``, so a new route is covered without editing
this file; a new path parameter or body fails the test until it is added to ``B_IDS`` / ``BODIES``) is called with
A's operator key and B's ids: 404 like an unknown id (403 for hub-wide and admin-only routes), and B's rows are
unchanged afterwards; lists with A's key hold none of B's rows; under ``/api/v1/t/b/...`` A's key gets 404; a hub
admin key sees both towns, or the one its path names.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from apitest import ADMIN, OP, ApiClient, Seeder, hours_ago, make_settings
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.kinds import default_rules
from stadtpuls.alerts.store import save_rule
from stadtpuls.api.deps import require_admin, require_operator
from stadtpuls.api.main import create_app

EUI = {"a": "a0a0a0a0a0a0a0", "b": "b0b0b0b0b0b0b0"}  # + two digits: the towns' DevEUIs tell their town


def _town(seed: Seeder, t: str, *, lat: float) -> dict[str, Any]:
    """Town ``t``: two bins with readings, a lot with one space, a spare device, dead letters of its devices."""
    conn = seed.conn
    conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", (t, f"Town {t}"))
    ids: dict[str, Any] = {"bins": [f"{t}-bin-1", f"{t}-bin-2"], "lot": f"{t}-lot", "space": f"{t}-lot-s1"}
    devs = []
    for k, site in enumerate(ids["bins"], start=1):
        seed.site(site, "bin", lat=lat + k / 1000, lon=12.38, threshold_pct=80, waste_type="residual", volume_l=1100)
        dev = seed.device(site, codec="milesight-iot/em310-udl", dev_eui=f"{EUI[t]}{k:02d}")
        seed.levels(dev, [(hours_ago(h), 90.0 - h) for h in (30, 20, 10)])
        devs.append(dev)
    seed.site(ids["lot"], "lot", capacity=1, lat=lat, lon=12.37)
    seed.site(ids["space"], "space", parent_id=ids["lot"])
    devs.append(seed.device(ids["space"], dev_eui=f"{EUI[t]}03"))
    devs.append(seed.device(None, dev_eui=f"{EUI[t]}04"))
    for site in [*ids["bins"], ids["lot"], ids["space"]]:
        conn.execute("UPDATE sites SET tenant = %s WHERE site_id = %s", (t, site))
    conn.execute("UPDATE devices SET tenant = %s WHERE dev_eui = ANY(%s)", (t, devs))
    for dev in devs:
        seed.dead_letter("codec", f"bad payload of {dev}", dev_eui=dev)
        seed.uplink(dev, hours_ago(1))
    ids["devices"] = devs
    return ids


@pytest.fixture
def towns(seed: Seeder, client: ApiClient) -> dict[str, dict[str, Any]]:
    conn: psycopg.Connection = seed.conn
    out = {"a": _town(seed, "a", lat=51.33), "b": _town(seed, "b", lat=51.40)}
    seed.dead_letter("envelope", "not JSON")  # of no town
    for rule in default_rules(battery_low_v=3.2, battery_low_pct=20):
        save_rule(conn, rule)
    conn.execute(
        "INSERT INTO notification_channels (channel_id, kind, target, secret) VALUES ('ops', 'webhook', %s, 's')",
        ("http://127.0.0.1:9/hook",),
    )
    t0 = seed.conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    for town in out.values():
        for dev in town["devices"]:
            conn.execute("INSERT INTO device_state (dev_eui, last_time) VALUES (%s, %s)", (dev, t0 - timedelta(days=1)))
    evaluate(conn, now=t0, next_service=t0 + timedelta(days=1))
    for t, town in out.items():
        alerts = conn.execute(
            "SELECT alert_id FROM alerts a JOIN devices d USING (dev_eui) WHERE d.tenant = %s ORDER BY 1", (t,)
        ).fetchall()
        assert alerts, f"town {t} has no alert to test with"
        town["alert"] = alerts[0][0]
        town["notification"] = conn.execute(
            "SELECT n.notification_id FROM notifications n JOIN alert_events e USING (event_id)"
            " WHERE e.alert_id = %s ORDER BY 1 LIMIT 1",
            (town["alert"],),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("UPDATE notifications SET status = 'dead' WHERE notification_id = %s", (town["notification"],))
        r = client.post("/api/v1/keys", headers=ADMIN, json={"name": f"{t} operator", "tenant": t})
        assert r.status_code == 201, r.text
        assert r.json()["tenant"] == t
        town["key"] = {"X-API-Key": r.json()["key"]}
        town["key_id"] = r.json()["key_id"]
    return out


# ---------------------------------------------------------------------------------------------------------------
# The routes, from the app itself


def _calls(dependant: Dependant) -> set[Any]:
    """Every dependency function ``dependant`` needs, however deep."""
    out: set[Any] = set()
    for d in dependant.dependencies:
        out |= {d.call} | _calls(d)
    return out


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, also those of included routers (FastAPI keeps them in the router it included)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out += _api_routes(route.original_router.routes)
    return out


def _guarded() -> list[tuple[str, str, str, APIRoute]]:
    """(method, path, role, route) of every route that needs a key."""
    app = create_app(make_settings("postgresql://unused@127.0.0.1:1/x"))
    out = []
    schema_paths = set(app.openapi()["paths"])
    routes = _api_routes(app.routes)
    assert {r.path_format for r in routes} >= schema_paths, "routes the isolation test cannot find"
    for route in routes:
        calls = _calls(route.dependant)
        role = "admin" if require_admin in calls else "operator" if require_operator in calls else None
        if role is None:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            out.append((method, route.path_format, role, route))
    return out


GUARDED = _guarded()
OPERATOR = [(m, p) for m, p, role, _ in GUARDED if role == "operator"]


def _b_ids(town: dict[str, Any]) -> dict[str, str]:
    """Town B's value of every path parameter of the app."""
    return {
        "dev_eui": town["devices"][0],
        "site_id": town["bins"][0],
        "alert_id": str(town["alert"]),
        "notification_id": str(town["notification"]),
        "rule_id": "device-silent",  # rules are the hub's: no town owns one
        "key_id": town["key_id"],
        "slug": "b",
    }


def _call(client: ApiClient, method: str, url: str, key: dict[str, str], route: APIRoute, b: dict[str, Any]) -> Any:
    """``method url`` with ``key`` and the route's body aimed at town B (:func:`_body`)."""
    body = _body(route, b)
    headers = {**key, **body.pop("headers", {})}
    return client.request(method, url, headers=headers, **body)


def _body(route: APIRoute, b: dict[str, Any]) -> dict[str, Any]:
    """A request body aimed at town B's rows (a new row naming B's site as its parent or site)."""
    if route.body_field is None:
        if route.path.endswith("/import"):
            csv = f"dev_eui,codec,name\n{b['devices'][0]},nwave/nps405,hijacked\n"
            return {"content": csv.encode(), "headers": {"Content-Type": "text/csv"}}
        return {}
    annotation = route.body_field.field_info.annotation
    name = getattr(annotation, "__name__", str(annotation))
    bodies: dict[str, dict[str, Any]] = {
        "SiteCreate": {"site_id": "a-new-space", "kind": "space", "parent_id": b["lot"]},
        "SiteUpdate": {"name": "hijacked"},
        "DeviceCreate": {"dev_eui": "a0a0a0a0a0a0a0ff", "codec": "nwave/nps405", "site_id": b["bins"][0]},
        "DeviceUpdate": {"name": "hijacked"},
        "KeyCreate": {"name": "hijacked", "tenant": "b"},
        "Ack": {"note": "hijacked"},
        "RuleIn": {"kind": "device_silent", "enabled": False},
        "TenantCreate": {"slug": "c", "name": "Town C"},
        "TenantUpdate": {"name": "hijacked"},
    }
    assert name in bodies, f"the isolation test has no body for {name} ({route.path}): add one"
    return {"json": bodies[name]}


def _snapshot(conn: psycopg.Connection, town: str) -> str:
    """Every row of ``town`` (and the hub's rules) as text."""
    parts = []
    for query in (
        "SELECT to_jsonb(s) FROM sites s WHERE tenant = %(t)s ORDER BY site_id",
        "SELECT to_jsonb(d) FROM devices d WHERE tenant = %(t)s ORDER BY dev_eui",
        "SELECT to_jsonb(k) FROM api_keys k WHERE tenant = %(t)s ORDER BY key_id",
        "SELECT to_jsonb(x) FROM tenants x WHERE slug = %(t)s",
        "SELECT to_jsonb(a) FROM alerts a JOIN devices d USING (dev_eui) WHERE d.tenant = %(t)s ORDER BY alert_id",
        """SELECT to_jsonb(n) FROM notifications n JOIN alert_events e USING (event_id) JOIN alerts a USING (alert_id)
           JOIN devices d USING (dev_eui) WHERE d.tenant = %(t)s ORDER BY notification_id""",
        "SELECT count(*) FROM dead_letters l JOIN devices d USING (dev_eui) WHERE d.tenant = %(t)s",
        "SELECT to_jsonb(r) FROM alert_rules r ORDER BY rule_id",
    ):
        parts += [json.dumps(r[0], sort_keys=True, default=str) for r in conn.execute(query, {"t": town})]
    return "\n".join(parts)


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        assert m.group(1) in ids, f"the isolation test has no id for path parameter {m.group(1)!r}: add one"
        return ids[m.group(1)]

    return re.sub(r"\{(\w+)\}", one, path)


def _b_marks(b: dict[str, Any]) -> list[str]:
    return [EUI["b"], *b["bins"], b["lot"], b["space"], f'"alert_id":{b["alert"]},', "bad payload of b0"]


def _shows_b(text: str, b: dict[str, Any]) -> list[str]:
    compact = text.replace(" ", "")
    return [m for m in _b_marks(b) if m in compact]


# ---------------------------------------------------------------------------------------------------------------


def test_the_app_has_operator_and_admin_routes_to_check() -> None:
    assert len(OPERATOR) >= 20
    assert {p for m, p, role, _ in GUARDED if role == "admin"} >= {"/api/v1/keys", "/api/v1/tenants/{slug}"}


def test_every_route_with_another_towns_ids_is_not_found_and_changes_nothing(
    client: ApiClient, seed: Seeder, towns: dict[str, dict[str, Any]]
) -> None:
    a, b = towns["a"], towns["b"]
    before = _snapshot(seed.conn, "b")
    wrong: list[str] = []
    checked = 0
    for method, path, role, route in GUARDED:
        if "{" not in path:
            continue
        url = _fill(path, _b_ids(b))
        r = _call(client, method, url, a["key"], route, b)
        expected = 403 if role == "admin" or path.startswith("/api/v1/alert-rules") else 404
        checked += 1
        if r.status_code != expected:
            wrong.append(f"{method} {url}: {r.status_code} (expected {expected}) {r.text[:200]}")
    assert checked >= 15
    assert not wrong, "\n".join(wrong)
    assert _snapshot(seed.conn, "b") == before
    # the same routes with A's own ids answer (the 404s above are not every route failing)
    for method, path, role, _route in GUARDED:
        if method == "GET" and "{" in path and role == "operator" and "rule_id" not in path:
            ids = {**_b_ids(b), "dev_eui": a["devices"][0], "site_id": a["bins"][0], "alert_id": str(a["alert"])}
            url = _fill(path, ids)
            assert client.get(url, headers=a["key"]).status_code == 200, url


def test_routes_without_ids_show_and_take_only_the_own_town(
    client: ApiClient, seed: Seeder, towns: dict[str, dict[str, Any]]
) -> None:
    a, b = towns["a"], towns["b"]
    before = _snapshot(seed.conn, "b")
    wrong: list[str] = []
    for method, path, role, route in GUARDED:
        if "{" in path:
            continue
        r = _call(client, method, path, a["key"], route, b)
        if role == "admin":
            ok = r.status_code == 403
        elif method == "GET":
            ok = r.status_code == 200 and not _shows_b(r.text, b)
        else:  # a new row naming B's site, or an import of B's device: refused as invalid
            ok = r.status_code == 422
        if not ok:
            wrong.append(f"{method} {path}: {r.status_code} {_shows_b(r.text, b)} {r.text[:300]}")
    assert not wrong, "\n".join(wrong)
    assert _snapshot(seed.conn, "b") == before
    # the lists do show A's own rows
    listed = client.get("/api/v1/devices", headers=a["key"]).json()
    assert sorted(d["dev_eui"] for d in listed["data"]) == sorted(a["devices"])
    assert {d["tenant"] for d in listed["data"]} == {"a"}
    bins = client.get("/api/v1/waste/bins", headers=a["key"]).json()
    assert sorted(x["site_id"] for x in bins["data"]) == a["bins"]
    dead = client.get("/api/v1/dead-letters", headers=a["key"]).json()
    assert dead["count"] == len(a["devices"])  # not B's, not the envelope of no town
    alerts = client.get("/api/v1/alerts", headers=a["key"]).json()["data"]
    assert alerts and all((x["dev_eui"] or "").startswith(EUI["a"]) or x["site_id"].startswith("a-") for x in alerts)


def test_every_route_under_another_towns_prefix_is_not_found(
    client: ApiClient, seed: Seeder, towns: dict[str, dict[str, Any]]
) -> None:
    a, b = towns["a"], towns["b"]
    before = _snapshot(seed.conn, "b")
    own = {**_b_ids(b), "dev_eui": a["devices"][0], "site_id": a["bins"][0], "alert_id": str(a["alert"])}
    wrong = []
    for method, path, role, route in GUARDED:
        url = "/api/v1/t/b" + _fill(path, own).removeprefix("/api/v1")
        if not path.startswith("/api/v1/"):
            continue
        r = _call(client, method, url, a["key"], route, b)
        expected = {403, 404} if role == "admin" else {404}
        if r.status_code not in expected:
            wrong.append(f"{method} {url}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
    assert _snapshot(seed.conn, "b") == before
    # its own town's prefix works like no prefix
    r = client.get(f"/api/v1/t/a/devices/{a['devices'][0]}", headers=a["key"])
    assert r.status_code == 200 and r.json()["tenant"] == "a"
    assert client.get("/api/v1/t/nowhere/devices", headers=a["key"]).status_code == 404


def test_a_hub_admin_key_sees_both_towns_or_the_one_its_path_names(
    client: ApiClient, towns: dict[str, dict[str, Any]]
) -> None:
    a, b = towns["a"], towns["b"]
    for path in ("/api/v1/devices", "/api/v1/sites", "/api/v1/waste/bins", "/api/v1/dead-letters", "/api/v1/alerts"):
        text = client.get(path, headers=ADMIN).text
        assert EUI["a"] in text and EUI["b"] in text or ("a-bin-1" in text and "b-bin-1" in text), path
        only_b = client.get("/api/v1/t/b" + path.removeprefix("/api/v1"), headers=ADMIN).text
        assert _shows_b(only_b, b) and EUI["a"] not in only_b and "a-bin-1" not in only_b, path
    dead = client.get("/api/v1/dead-letters", headers=ADMIN).json()
    assert dead["count"] == len(a["devices"]) + len(b["devices"]) + 1  # and the one of no town
    for url in (f"/api/v1/devices/{b['devices'][0]}", f"/api/v1/sites/{b['lot']}", f"/api/v1/alerts/{b['alert']}"):
        assert client.get(url, headers=ADMIN).status_code == 200, url
    assert client.get(f"/api/v1/t/a/devices/{b['devices'][0]}", headers=ADMIN).status_code == 404
    keys = client.get("/api/v1/keys", headers=ADMIN).json()["data"]
    assert {(k["key_id"], k["tenant"]) for k in keys} == {(a["key_id"], "a"), (b["key_id"], "b")}
    assert [k["tenant"] for k in client.get("/api/v1/t/b/keys", headers=ADMIN).json()["data"]] == ["b"]


def test_a_digest_is_the_hubs_listed_and_resent_by_the_admin_only(
    client: ApiClient, seed: Seeder, towns: dict[str, dict[str, Any]]
) -> None:
    from stadtpuls.alerts.digest import queue_digests

    seed.conn.execute("UPDATE notification_channels SET digest_hour = 0")
    now = seed.conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    assert queue_digests(seed.conn, now=now, timezone="UTC") == 1
    [(nid,)] = seed.conn.execute("SELECT notification_id FROM notifications WHERE digest_day IS NOT NULL").fetchall()
    seed.conn.execute("UPDATE notifications SET status = 'dead' WHERE notification_id = %s", (nid,))
    for town in towns.values():
        listed = client.get("/api/v1/notifications?status=dead", headers=town["key"]).json()["data"]
        assert [n["notification_id"] for n in listed] == [town["notification"]]  # its own change, no digest
        assert client.post(f"/api/v1/notifications/{nid}/resend", headers=town["key"]).status_code == 404
    admin = client.get("/api/v1/notifications?status=dead", headers=ADMIN).json()["data"]
    assert nid in [n["notification_id"] for n in admin]
    assert client.post(f"/api/v1/notifications/{nid}/resend", headers=ADMIN).status_code == 202


def test_an_operator_creates_and_imports_into_its_own_town_only(
    client: ApiClient, seed: Seeder, towns: dict[str, dict[str, Any]]
) -> None:
    a = towns["a"]
    r = client.post("/api/v1/sites", headers=a["key"], json={"site_id": "a-new-bin", "kind": "bin"})
    assert r.status_code == 201 and r.json()["tenant"] == "a"
    r = client.post(
        "/api/v1/devices",
        headers=a["key"],
        json={"dev_eui": "a0a0a0a0a0a0a0f0", "codec": "nwave/nps405", "site_id": "a-new-bin"},
    )
    assert r.status_code == 201 and r.json()["tenant"] == "a"
    r = client.post("/api/v1/sites", headers=a["key"], json={"site_id": "a-x", "kind": "bin", "tenant": "b"})
    assert r.status_code == 422 and "tenant" in r.json()["detail"]
    # nothing moves to another town: no tenant in a change, no parent or site of another town
    b = towns["b"]
    assert client.patch(f"/api/v1/sites/{a['lot']}", headers=a["key"], json={"tenant": "b"}).status_code == 422
    assert client.patch(f"/api/v1/devices/{a['devices'][0]}", headers=a["key"], json={"tenant": "b"}).status_code == 422
    r = client.patch(f"/api/v1/sites/{a['space']}", headers=a["key"], json={"parent_id": b["lot"]})
    assert r.status_code == 422 and "parent_id" in r.json()["detail"]
    r = client.patch(f"/api/v1/devices/{a['devices'][3]}", headers=a["key"], json={"site_id": b["bins"][0]})
    assert r.status_code == 422 and "site_id" in r.json()["detail"]
    moved = seed.conn.execute(
        "SELECT count(*) FROM sites s JOIN sites p ON p.site_id = s.parent_id WHERE s.tenant <> p.tenant"
    ).fetchone()
    assert moved == (0,)
    assert seed.conn.execute("SELECT site_id FROM devices WHERE dev_eui = %s", (a["devices"][3],)).fetchone() == (None,)
    csv = "dev_eui,codec,site_id\na0a0a0a0a0a0a0f1,nwave/nps405,a-new-bin\n"
    r = client.post("/api/v1/devices/import", headers={**a["key"], "Content-Type": "text/csv"}, content=csv)
    assert r.status_code == 200 and r.json()["devices_created"] == 1, r.text
    rows = seed.conn.execute(
        "SELECT dev_eui, tenant FROM devices WHERE dev_eui IN ('a0a0a0a0a0a0a0f0', 'a0a0a0a0a0a0a0f1') ORDER BY 1"
    ).fetchall()
    assert rows == [("a0a0a0a0a0a0a0f0", "a"), ("a0a0a0a0a0a0a0f1", "a")]
    # a file naming B's device: refused whole, the new device of the same file is not created either
    csv = f"dev_eui,codec\na0a0a0a0a0a0a0f2,nwave/nps405\n{towns['b']['devices'][3]},nwave/nps405\n"
    r = client.post("/api/v1/devices/import", headers={**a["key"], "Content-Type": "text/csv"}, content=csv)
    assert r.status_code == 422 and "another town" in r.json()["detail"]
    assert seed.conn.execute("SELECT count(*) FROM devices WHERE dev_eui = 'a0a0a0a0a0a0a0f2'").fetchone() == (0,)
    # a hub admin key without a prefix names the town; under a prefix it is the path's
    r = client.post("/api/v1/sites", headers=ADMIN, json={"site_id": "b-by-admin", "kind": "bin", "tenant": "b"})
    assert r.status_code == 201 and r.json()["tenant"] == "b"
    r = client.post("/api/v1/t/b/sites", headers=ADMIN, json={"site_id": "b-by-admin-2", "kind": "bin"})
    assert r.status_code == 201 and r.json()["tenant"] == "b"
    r = client.post("/api/v1/sites", headers=ADMIN, json={"site_id": "z-1", "kind": "bin", "tenant": "nowhere"})
    assert r.status_code == 422


def test_hub_rules_are_changed_by_the_admin_on_a_hub_of_several_towns(
    client: ApiClient, towns: dict[str, dict[str, Any]]
) -> None:
    r = client.put("/api/v1/alert-rules/bin-full", headers=towns["a"]["key"], json={"kind": "bin_full"})
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    assert client.put("/api/v1/alert-rules/bin-full", headers=ADMIN, json={"kind": "bin_full"}).status_code == 200
    assert client.get("/api/v1/alert-rules", headers=towns["a"]["key"]).status_code == 200


def test_one_town_hub_keeps_its_operator_key_seeing_everything(client: ApiClient, seed: Seeder) -> None:
    seed.dead_letter("envelope", "not JSON")
    assert client.get("/api/v1/dead-letters", headers=OP).json()["count"] == 1
    assert client.put("/api/v1/alert-rules/bin-full", headers=OP, json={"kind": "bin_full"}).status_code == 200
