from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from apitest import OP, ApiClient, Seeder, hours_ago, make_settings, now


def test_health_reports_database_mode_and_ingest_lag(client: ApiClient, seed: Seeder) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["database"] is True
    assert body["mode"] in ("timescaledb", "postgresql")
    assert body["ingest_lag_s"] is None and body["newest_uplink_at"] is None
    dev = seed.device(None)
    seed.uplink(dev, hours_ago(1), received_at=now() - timedelta(seconds=30))
    lag = client.get("/health").json()["ingest_lag_s"]
    assert 29 <= lag < 90


def test_health_is_503_problem_free_json_when_database_is_down(make_client: Any) -> None:
    c = make_client(make_settings("postgresql://postgres@127.0.0.1:1/nothing"), start_wait=0.2, conn_timeout=0.3)
    r = c.get("/health")
    assert r.status_code == 503
    assert r.json()["database"] is False and r.json()["status"] == "degraded"
    r = c.get("/api/v1/parking/lots")
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "5"


def test_metrics_count_requests_per_route_template_and_read_gauges(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-m", 2)
    seed.park(devs[0], hours_ago(0.5), False)
    for _ in range(3):
        client.get("/api/v1/parking/lots/lot-m")
    client.get("/api/v1/parking/lots/other")
    assert client.get("/metrics").status_code == 401  # an operator key, or the internal metrics port
    r = client.get("/metrics", headers=OP)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    ok = 'stadtpuls_api_requests_total{method="GET",route="/api/v1/parking/lots/{lot_id}",status="200"} 3.0'
    assert ok in text
    assert 'route="/api/v1/parking/lots/{lot_id}",status="404"} 1.0' in text
    assert "stadtpuls_api_request_duration_seconds_bucket" in text
    assert 'stadtpuls_parking_free{lot_id="lot-m"} 1.0' in text
    assert "stadtpuls_devices 2.0" in text
    assert "stadtpuls_api_database_up 1.0" in text


def test_unknown_path_and_wrong_method_are_problems(client: ApiClient) -> None:
    r = client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["instance"] == "/api/v1/nothing-here"
    r = client.request("PUT", "/api/v1/parking/lots")
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert "PUT" in r.json()["detail"]


def test_validation_errors_are_problems_with_locations(client: ApiClient) -> None:
    r = client.get("/api/v1/devices", headers=OP, params={"limit": "many"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["errors"][0]["loc"] == ["query", "limit"] and "limit" in body["detail"]


def test_request_body_over_the_limit_is_413(make_client: Any, clean_db: str) -> None:
    c = make_client(make_settings(clean_db, max_request_bytes=2048))
    big = "dev_eui,codec\n" + "0000000000000001,nwave/nps405\n" * 200
    r = c.post("/api/v1/devices/import", headers={**OP, "Content-Type": "text/csv"}, content=big)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"

    async def chunks() -> Any:  # no Content-Length: counted while streaming
        for _ in range(10):
            yield b"x" * 1024

    r = c.post("/api/v1/devices/import", headers={**OP, "Content-Type": "text/csv"}, content=chunks())
    assert r.status_code == 413


def test_public_routes_are_rate_limited_per_client(make_client: Any, clean_db: str) -> None:
    c = make_client(make_settings(clean_db, rate_limit_per_minute=5))
    codes = [c.get("/api/v1/parking/lots").status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    r = c.get("/api/v1/buses/lines")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"] == "application/problem+json"
    assert c.get("/api/v1/devices", headers=OP).status_code == 200  # operator routes are not limited
    assert c.get("/health").status_code == 200


def test_cors_open_for_configured_public_origins_closed_for_operator_routes(make_client: Any, clean_db: str) -> None:
    c = make_client(make_settings(clean_db, cors_origins=["https://city.example"]))
    origin = {"Origin": "https://city.example"}
    r = c.get("/api/v1/parking/lots", headers=origin)
    assert r.headers.get("access-control-allow-origin") == "https://city.example"
    pre = {**origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-API-Key"}
    r = c.request("OPTIONS", "/api/v1/devices", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    r = c.get("/api/v1/devices", headers={**origin, **OP})
    assert "access-control-allow-origin" not in r.headers
    r = c.get("/api/v1/parking/lots", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_closed_by_default_and_operator_origins_opt_in(make_client: Any, clean_db: str) -> None:
    closed = make_client(make_settings(clean_db))
    r = closed.get("/api/v1/parking/lots", headers={"Origin": "https://city.example"})
    assert "access-control-allow-origin" not in r.headers
    opened = make_client(make_settings(clean_db, operator_cors_origins=["https://ops.example"]))
    pre = {
        "Origin": "https://ops.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-API-Key",
    }
    r = opened.request("OPTIONS", "/api/v1/devices", headers=pre)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ops.example"


def test_openapi_documents_problem_responses(client: ApiClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "ProblemDetail" in schema["components"]["schemas"]
    op = schema["paths"]["/api/v1/parking/lots/{lot_id}"]["get"]
    assert "application/problem+json" in op["responses"]["404"]["content"]
    assert client.get("/docs").status_code == 200


def test_api_console_loads_its_assets_from_the_hub_only(client: ApiClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/openapi.json"} <= set(urls)
    assert [u for u in urls if "//" in u] == []  # nothing from another origin
    js = client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in js.content
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    assert client.get("/docs/assets/..%2Fcore.py").status_code == 404
    assert client.get("/redoc").status_code == 404
