"""Who gets in, with what, and how much: API keys on every operator route (found in the OpenAPI schema), key
storage and comparison, request size limits, parameterised SQL under injection strings, CORS closed by default
for operator routes, and the rate limit of public routes."""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from stadtpuls.api import auth
from stadtpuls.api.main import create_app
from stadtpuls.schema import RESET_TENANTS
from stadtpuls.settings import Settings

from .conftest import (
    ADMIN_KEY,
    OPERATOR_KEY,
    REPO,
    ApiClient,
    make_settings,
    seed_city,
    table_counts,
    write_artifact,
)

pytestmark = pytest.mark.slow  # a reliability suite: `make test` runs it, `make test-fast` does not

OP = {"X-API-Key": OPERATOR_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
INJECTIONS = [
    "'; DROP TABLE devices;--",
    "' OR '1'='1",
    "\x00",
    "a\x00b",
    "x" * 5000,
    "Ünïcødé 🚮 ☃ \u202e",
    "%s %(x)s {} $1 \\",
    "1; SELECT pg_sleep(5)",
]
_SCHEMA = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/x")).openapi()  # type: ignore[arg-type]
SAMPLE = {
    "dev_eui": "a000000000000001",
    "site_id": "bin-000",
    "lot_id": "lot-market",
    "line_id": "line-5",
    "key_id": "0123456789ab",
    "parking_site_id": "1",
    "path": "Things",
    "entity_id": "urn:ngsi-ld:WasteContainer:bin-000",
    "alert_id": "1",
    "rule_id": "device_silent",
    "notification_id": "1",
    "slug": "default",
}
BODIES: dict[str, dict[str, Any]] = {
    "DeviceCreate": {"dev_eui": "a0000000000000f1", "codec": "nwave/nps405", "name": "n"},
    "DeviceUpdate": {"name": "n"},
    "SiteCreate": {"site_id": "site-x", "kind": "bin", "name": "n"},
    "SiteUpdate": {"name": "n"},
    "KeyCreate": {"name": "n", "role": "operator"},
    "Ack": {"note": "n"},
    "RuleIn": {"kind": "device_silent"},
    "TenantCreate": {"slug": "default", "name": "n"},  # taken (409): the hub stays one town for these tests
    "TenantUpdate": {"brand_name": "n"},
}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in _SCHEMA["paths"].items() for m, op in ops.items()]


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)


def _body_schema(op: dict[str, Any]) -> str | None:
    content = op.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] or None


def _body(op: dict[str, Any]) -> dict[str, Any]:
    name = _body_schema(op)
    if name:
        return {"json": dict(BODIES[name])}
    if "text/csv" in op.get("requestBody", {}).get("content", {}):
        return {"content": b"dev_eui,codec\n", "headers": {"Content-Type": "text/csv"}}
    return {}


# routes whose standard needs a query parameter (NGSI-LD: a list names its type)
REQUIRED_QUERY = {"/ngsi-ld/v1/entities": "?type=WasteContainer"}
OPEN_DATA_PREFIXES = ("/api/public/", "/sta/", "/ngsi-ld/")
GUARDED = [(m, p) for m, p, op in _operations() if op.get("security")]
ADMIN_ONLY = [(m, p) for m, p in GUARDED if p.startswith(("/api/v1/keys", "/api/v1/tenants"))]
PUBLIC = [
    (m, p)
    for m, p, op in _operations()
    if not op.get("security") and not p.endswith("/stream") and not p.startswith(OPEN_DATA_PREFIXES)
]
# the feeds and the platform standards' APIs, all public
OPEN_DATA = [(m, p, op) for m, p, op in _operations() if p.startswith(OPEN_DATA_PREFIXES)]


@pytest.fixture(scope="module")
def seeded(db_url: str) -> dict[str, Any]:
    return seed_city(db_url)


@pytest.fixture
def app_client(db_url: str, seeded: dict[str, Any]) -> Iterator[Callable[..., ApiClient]]:
    made: list[ApiClient] = []

    def make(**overrides: Any) -> ApiClient:
        c = ApiClient(create_app(make_settings(db_url, **overrides)))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(app_client: Callable[..., ApiClient]) -> ApiClient:
    return app_client()


@pytest.fixture(autouse=True)
def one_town(db_url: str) -> Iterator[None]:
    """Every test starts on a hub of one town: a test that adds a town or renames one (the route checks send
    bodies) leaves none behind."""
    yield
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(RESET_TENANTS)


# -- authentication and roles ----------------------------------------------------------------------------------
def test_the_schema_marks_every_operator_route_and_only_those() -> None:
    assert len(GUARDED) >= 20 and ADMIN_ONLY
    for _method, path in GUARDED:
        if path == "/metrics":  # an operator key, or the internal metrics port
            continue
        assert path.startswith("/api/v1/") and not path.startswith(("/api/v1/parking", "/api/v1/buses")), path
    for _method, path in PUBLIC:
        public = ("/api/v1/parking", "/api/v1/buses", "/api/v1/map", "/api/v1/district", "/health", "/metrics")
        assert path.startswith(public), path


@pytest.mark.parametrize(("method", "path"), GUARDED, ids=[f"{m} {p}" for m, p in GUARDED])
def test_operator_route_refuses_no_key_wrong_key_and_a_key_without_the_role(
    client: ApiClient, method: str, path: str
) -> None:
    op = _SCHEMA["paths"][path][method.lower()]
    url = _concrete(path)
    for headers in (
        {},
        {"X-API-Key": "wrong"},
        {"X-API-Key": OPERATOR_KEY + "x"},
        {"X-API-Key": OPERATOR_KEY[:-1]},
        {"X-API-Key": "sp_0123456789ab_" + "A" * 43},
        {"x-api-key": " "},
    ):
        r = client.request(
            method,
            url,
            headers={**headers, **_body(op).get("headers", {})},
            **{k: v for k, v in _body(op).items() if k != "headers"},
        )
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = client.request(
        method,
        url,
        headers={**OP, **_body(op).get("headers", {})},
        **{k: v for k, v in _body(op).items() if k != "headers"},
    )
    if (method, path) in ADMIN_ONLY:
        assert r.status_code == 403, r.text
    else:
        assert r.status_code not in (401, 403), r.text


def test_the_open_data_feeds_need_no_key() -> None:
    assert len(OPEN_DATA) >= 6 and not any(op.get("security") for _m, _p, op in OPEN_DATA)


@pytest.mark.parametrize(
    ("method", "path"),
    PUBLIC + [(m, p) for m, p, _ in OPEN_DATA],
    ids=[f"{m} {p}" for m, p in PUBLIC + [(m, p) for m, p, _ in OPEN_DATA]],
)
def test_public_route_needs_no_key_and_ignores_a_bad_one(client: ApiClient, method: str, path: str) -> None:
    for headers in ({}, {"X-API-Key": "wrong"}):
        r = client.request(method, _concrete(path) + REQUIRED_QUERY.get(path, ""), headers=headers)
        assert r.status_code in (200, 404), (path, r.status_code, r.text)


def test_a_revoked_database_key_is_refused(client: ApiClient) -> None:
    r = client.post("/api/v1/keys", headers=ADMIN, json={"name": "drill", "role": "operator"})
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["key_id"]
    assert client.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/api/v1/keys", headers={"X-API-Key": key}).status_code == 403  # operator, not admin
    assert client.delete(f"/api/v1/keys/{key_id}", headers=ADMIN).status_code == 200
    assert client.get("/api/v1/devices", headers={"X-API-Key": key}).status_code == 401


# -- key storage and comparison ---------------------------------------------------------------------------------
def test_keys_are_stored_as_salted_hashes_only(client: ApiClient, db_url: str) -> None:
    made = [
        client.post("/api/v1/keys", headers=ADMIN, json={"name": f"k{i}", "role": "operator"}).json() for i in range(2)
    ]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT * FROM api_keys WHERE key_id = ANY(%s)", ([m["key_id"] for m in made],)).fetchall()
        columns = [d.name for d in conn.execute("SELECT * FROM api_keys LIMIT 0").description or ()]
    assert len(rows) == 2
    for m, row in zip(made, rows, strict=False):
        secret = m["key"].split("_", 2)[2]
        stored = " ".join(str(v) for v in row)
        assert secret not in stored and m["key"] not in stored
    hashes = [row[columns.index("key_hash")] for row in rows]
    assert all(re.fullmatch(r"sha256\$[0-9a-f]{32}\$[0-9a-f]{64}", h) for h in hashes)
    assert hashes[0].split("$")[1] != hashes[1].split("$")[1]  # a salt per key


def test_keys_from_settings_are_held_as_digests_only() -> None:
    ring = auth.KeyRing(OPERATOR_KEY, ADMIN_KEY)
    held = repr(vars(ring))
    assert OPERATOR_KEY not in held and ADMIN_KEY not in held


def _compares(func: Any) -> list[ast.AST]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Compare) and any(isinstance(o, ast.Eq | ast.NotEq) for o in n.ops)
    ]


def test_key_checks_compare_in_constant_time() -> None:
    for func in (auth.verify_secret, auth.KeyRing.authenticate):
        source = inspect.getsource(func)
        assert "hmac.compare_digest(" in source, func.__qualname__
        names = {ast.unparse(n) for n in _compares(func)}
        assert not any("digest" in n or "secret" in n or "hash" in n for n in names), names


# -- request size ------------------------------------------------------------------------------------------------
def test_an_oversized_body_is_refused_with_413(app_client: Callable[..., ApiClient], db_url: str) -> None:
    client = app_client(max_request_bytes=4096)
    before = table_counts(db_url)
    big = b"dev_eui,codec\n" + b"a000000000000099,nwave/nps405\n" * 400
    r = client.post("/api/v1/devices/import", headers={**OP, "Content-Type": "text/csv"}, content=big)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json", r.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while it streams
        for _ in range(20):
            yield b'{"name": "' + b"x" * 1000 + b'"'

    r = client.post("/api/v1/sites", headers={**OP, "Content-Type": "application/json"}, content=chunks())
    assert r.status_code == 413, r.text
    big_json = {"site_id": "site-big", "kind": "bin", "name": "n", "params": {"x": "y" * 8000}}
    r = client.post("/api/v1/sites", headers=OP, json=big_json)
    assert r.status_code == 413
    assert table_counts(db_url) == before
    small = client.post(
        "/api/v1/devices/import?dry_run=true",
        headers={**OP, "Content-Type": "text/csv"},
        content=b"dev_eui,codec\na000000000000099,nwave/nps405\n",
    )
    assert small.status_code == 200, small.text


# -- SQL only parameterised ---------------------------------------------------------------------------------------
def _string_params(op: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        types = {schema.get("type")} | {a.get("type") for a in schema.get("anyOf", [])}
        formats = {schema.get("format")} | {a.get("format") for a in schema.get("anyOf", [])}
        if "string" in types and p["in"] in ("path", "query"):
            out.append((p["in"], p["name"] + ("|formatted" if formats - {None} else "")))
    return out


def _injection_requests() -> list[tuple[str, str, str, str, str]]:
    """(method, path, where, name, value) for every string parameter and JSON body field of every operation."""
    out = []
    for method, path, op in _operations():
        if path.endswith("/stream"):
            continue
        for where, name in _string_params(op):
            for value in INJECTIONS:
                out.append((method, path, where, name, value))
        schema_name = _body_schema(op)
        if schema_name:
            props = _SCHEMA["components"]["schemas"][schema_name]["properties"]
            for field, spec in props.items():
                types = {spec.get("type")} | {a.get("type") for a in spec.get("anyOf", [])}
                if "string" in types:
                    for value in INJECTIONS:
                        out.append((method, path, "body", field, value))
    return out


INJECTION_REQUESTS = _injection_requests()


def test_every_string_parameter_and_body_field_gets_injection_strings() -> None:
    assert len({(m, p, w, n) for m, p, w, n, _ in INJECTION_REQUESTS}) >= 40


def test_injection_strings_get_4xx_or_a_correct_answer_and_the_tables_stay_intact(
    client: ApiClient, db_url: str
) -> None:
    statuses: dict[int, int] = {}
    created_names: dict[str, str] = {}
    for method, path, where, name, value in INJECTION_REQUESTS:
        op = _SCHEMA["paths"][path][method.lower()]
        url = _concrete(path)
        kwargs: dict[str, Any] = {k: v for k, v in _body(op).items() if k != "headers"}
        headers = {**ADMIN, **_body(op).get("headers", {})}
        param = name.split("|")[0]
        if where == "path":
            url = _concrete(path.replace("{" + param + "}", "\x01")).replace("\x01", _quote(value))
        elif where == "query":
            kwargs["params"] = {param: value}
        else:
            body = dict(kwargs.get("json") or {})
            body[name] = value
            kwargs["json"] = body
        if method == "DELETE" and where != "path":
            continue  # deleting seeded rows would only test the seed
        r = client.request(method, url, headers=headers, **kwargs)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (method, url, where, name, repr(value)[:40], r.status_code, r.text[:300])
        if r.status_code in (200, 201) and method == "POST" and path == "/api/v1/sites" and name == "name":
            created_names[r.json()["site_id"]] = value
            client.delete(f"/api/v1/sites/{r.json()['site_id']}", headers=ADMIN)
        if method == "GET" and where == "query" and r.status_code == 200 and "data" in r.json():
            assert r.json()["data"] == [] or param in ("format", "bucket", "at", "date"), (url, param, r.text[:300])
    counts = table_counts(db_url)
    assert counts["devices"] >= 8 and counts["sites"] >= 10 and counts["uplinks"] >= 4, counts
    assert statuses.get(422, 0) + statuses.get(404, 0) > 0
    write_artifact(
        "fuzz",
        "sql_injection",
        {"requests": sum(statuses.values()), "by_status": {str(k): v for k, v in sorted(statuses.items())}},
    )
    print(f"\ninjection requests by status: {dict(sorted(statuses.items()))}")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def test_a_site_name_full_of_sql_is_stored_and_read_back_verbatim(client: ApiClient) -> None:
    for i, value in enumerate(v for v in INJECTIONS if "\x00" not in v):
        site_id = f"inj-{i}"
        r = client.post("/api/v1/sites", headers=OP, json={"site_id": site_id, "kind": "bin", "name": value[:200]})
        assert r.status_code == 201, r.text
        assert client.get(f"/api/v1/sites/{site_id}", headers=OP).json()["name"] == value[:200]
        assert client.get("/api/v1/sites", headers=OP, params={"q": value[:100]}).json()["count"] >= 1
        assert client.delete(f"/api/v1/sites/{site_id}", headers=OP).status_code == 204


def _constant_names(tree: ast.Module) -> set[str]:
    """Module-level names bound to text (or tuples of text) made only of literals and earlier such names."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _literal_text(node.value, names):
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _literal_text(node: ast.AST, constants: set[str]) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.Tuple | ast.List):
        return all(_literal_text(e, constants) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join":
        return _literal_text(node.func.value, constants) and all(_literal_text(a, constants) for a in node.args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_text(node.left, constants) and _literal_text(node.right, constants)
    return False


def test_sql_is_never_built_from_runtime_strings() -> None:
    """Every execute()/copy() call in the services gets literal text (joined from literals at most), a
    psycopg.sql composition or a name: no f-strings, % formatting or str.format() inside the call, and no + of
    anything but literals."""
    bad = []
    calls = 0
    for package in ("api", "ingest", "stadtpuls"):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            constants = _constant_names(tree)
            for node in ast.walk(tree):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "executemany", "copy")
                    and node.args
                ):
                    continue
                calls += 1
                arg = node.args[0]
                formatted = isinstance(arg, ast.JoinedStr) or (
                    isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod)
                )
                formatted |= (
                    isinstance(arg, ast.Call)
                    and isinstance(arg.func, ast.Attribute)
                    and arg.func.attr == "format"
                    and not ast.unparse(arg).startswith("sql.")
                )
                concatenated = (
                    isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add) and not _literal_text(arg, constants)
                )
                if formatted or concatenated:
                    bad.append(f"{Path(path).relative_to(REPO)}:{node.lineno}: {ast.unparse(arg)[:80]}")
    assert calls > 30
    assert not bad, "SQL built from strings:\n" + "\n".join(bad)


# -- CORS --------------------------------------------------------------------------------------------------------
def _preflight(client: ApiClient, path: str, origin: str, method: str = "GET") -> Any:
    return client.request(
        "OPTIONS",
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "x-api-key",
        },
    )


def test_cors_is_closed_by_default_everywhere(client: ApiClient) -> None:
    for path in ("/api/v1/devices", "/api/v1/waste/bins", "/api/v1/keys", "/api/v1/parking/lots"):
        r = _preflight(client, path, "https://evil.example")
        assert "access-control-allow-origin" not in r.headers, (path, dict(r.headers))
        r = client.get(path, headers={**OP, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


def test_public_cors_origins_do_not_open_operator_routes(app_client: Callable[..., ApiClient]) -> None:
    client = app_client(cors_origins=["https://city.example"])
    r = _preflight(client, "/api/v1/parking/lots", "https://city.example")
    assert r.headers.get("access-control-allow-origin") == "https://city.example"
    assert (
        "access-control-allow-origin" not in _preflight(client, "/api/v1/parking/lots", "https://evil.example").headers
    )
    for path in ("/api/v1/devices", "/api/v1/waste/pickups", "/api/v1/keys"):
        for origin in ("https://city.example", "https://evil.example"):
            r = _preflight(client, path, origin)
            assert "access-control-allow-origin" not in r.headers, (path, origin)
            r = client.get(path, headers={**ADMIN, "Origin": origin})
            assert "access-control-allow-origin" not in r.headers, (path, origin)


@pytest.mark.parametrize(
    "path", ["/api/public/v3/parking-sites", "/api/public/datex2/json", "/api/public/gtfs-rt/vehicle-positions.pb"]
)
def test_public_cors_origins_open_the_open_data_feeds(app_client: Callable[..., ApiClient], path: str) -> None:
    client = app_client(cors_origins=["https://app.example"])
    assert _preflight(client, path, "https://app.example").headers.get("access-control-allow-origin") == (
        "https://app.example"
    )
    assert "access-control-allow-origin" not in _preflight(client, path, "https://evil.example").headers


def test_operator_cors_origins_open_operator_routes_to_those_origins_only(app_client: Callable[..., ApiClient]) -> None:
    client = app_client(operator_cors_origins=["https://ops.city.example"])
    r = _preflight(client, "/api/v1/devices", "https://ops.city.example", "DELETE")
    assert r.headers.get("access-control-allow-origin") == "https://ops.city.example"
    assert "x-api-key" in r.headers.get("access-control-allow-headers", "").lower()
    assert "access-control-allow-origin" not in _preflight(client, "/api/v1/devices", "https://evil.example").headers
    assert (
        "access-control-allow-origin"
        not in _preflight(client, "/api/v1/parking/lots", "https://ops.city.example").headers
    )


# -- rate limit ------------------------------------------------------------------------------------------------
def test_public_routes_are_rate_limited_with_retry_after(app_client: Callable[..., ApiClient]) -> None:
    client = app_client(rate_limit_per_minute=5)
    codes = [client.get("/api/v1/parking/lots").status_code for _ in range(5)]
    assert codes == [200] * 5
    r = client.get("/api/v1/buses/lines")  # one bucket per client across public routes
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert client.get("/api/v1/devices", headers=OP).status_code == 200  # operator routes: keyed, not limited


def test_rate_limit_is_off_when_set_to_zero(app_client: Callable[..., ApiClient]) -> None:
    client = app_client(rate_limit_per_minute=0)
    assert {client.get("/api/v1/parking/lots").status_code for _ in range(50)} == {200}
