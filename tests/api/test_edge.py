"""The hardened edge: security headers, the key before the body, throttled key guessing, client addresses from
trusted proxies only, trusted hosts, the rate limiter's bookkeeping at 50,000 clients (in-process), and on a real
uvicorn process: live-stream caps, slow-client deadlines, the concurrency cap and the internal metrics port."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apitest import ADMIN, OP, ApiClient, make_settings
from pagestest import OPERATOR_KEY as PAGES_KEY
from pagestest import api_service, start_api, wait_for

from stadtpuls.api.ratelimit import RateLimiter
from stadtpuls.demo.embedded import free_port

BAD_JSON = {"content": b'{"site_id": "x", "kind": ', "headers": {"Content-Type": "application/json"}}


# -- headers -----------------------------------------------------------------------------------------------------
def _secure(headers: object) -> None:
    h = dict(headers)  # type: ignore[call-overload]
    assert h["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["content-security-policy"]


def test_api_answers_carry_nosniff_frame_ancestors_and_no_store(client: ApiClient) -> None:
    r = client.get("/api/v1/parking/lots")
    _secure(r.headers)
    assert r.headers["cache-control"] == "no-store"
    r = client.post("/api/v1/keys", headers=ADMIN, json={"role": "operator", "name": "tablet"})
    assert r.status_code == 201 and r.json()["key"].startswith("sp_")
    _secure(r.headers)
    assert r.headers["cache-control"] == "no-store"  # the new key is never kept by a cache
    for path in ("/api/v1/sites", "/health", "/api/v1/nothing-here"):
        _secure(client.get(path).headers)
    docs = client.get("/docs")  # the API console loads its scripts: no default-src 'none' for it
    csp = docs.headers["content-security-policy"]  # its own same-origin policy, and never framed
    assert csp.startswith("default-src 'self';") and csp.endswith("frame-ancestors 'none'")
    assert client.get("/openapi.json").headers["content-security-policy"].startswith("default-src 'none'")
    page = client.get("/parking")
    _secure(page.headers)  # the pages keep their own policy, which forbids framing too
    assert page.headers["cache-control"] == "no-cache"


# -- the key before the body ---------------------------------------------------------------------------------------
def test_the_key_is_checked_before_the_body_is_parsed(client: ApiClient) -> None:
    assert client.post("/api/v1/sites", **BAD_JSON).status_code == 401
    assert client.post("/api/v1/sites", headers={"X-API-Key": "sp_wrong"}, json={"kind": 5}).status_code == 401
    r = client.post("/api/v1/keys", headers=OP, json={"role": "nonsense"})
    assert r.status_code == 403  # the operator key lacks the admin role; the body is not looked at
    assert (
        client.post("/api/v1/sites", headers={**OP, **BAD_JSON["headers"]}, content=BAD_JSON["content"]).status_code
        == 422
    )


# -- throttled key guessing, client address from trusted proxies only -------------------------------------------
def test_wrong_keys_are_throttled_per_client(
    clean_db: str, make_client: Callable[..., ApiClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(make_settings(clean_db, key_failures_per_minute=3, trusted_proxies=["127.0.0.1"]))
    guess = {"X-API-Key": "sp_0123456789ab_" + "x" * 40, "X-Forwarded-For": "198.51.100.7"}
    with caplog.at_level("WARNING", logger="stadtpuls.api.auth"):
        assert [client.get("/api/v1/sites", headers=guess).status_code for _ in range(3)] == [401] * 3
    assert [r.client for r in caplog.records if r.getMessage() == "wrong API key"] == ["198.51.100.7"] * 3
    r = client.get("/api/v1/sites", headers=guess)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert client.get("/api/v1/sites", headers={**OP, "X-Forwarded-For": "198.51.100.7"}).status_code == 429
    assert client.get("/api/v1/sites", headers={**OP, "X-Forwarded-For": "198.51.100.8"}).status_code == 200
    assert client.get("/api/v1/parking/lots", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 200


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(
    clean_db: str, make_client: Callable[..., ApiClient]
) -> None:
    client = make_client(make_settings(clean_db, key_failures_per_minute=2, trusted_proxies=["10.9.9.9"]))
    guess = {"X-API-Key": "sp_nope"}
    for i in range(2):
        assert client.get("/api/v1/sites", headers={**guess, "X-Forwarded-For": f"203.0.113.{i}"}).status_code == 401
    # a spoofed X-Forwarded-For from an untrusted peer does not make a new client
    assert client.get("/api/v1/sites", headers={**guess, "X-Forwarded-For": "203.0.113.99"}).status_code == 429


def test_rate_limit_counts_the_forwarded_client(clean_db: str, make_client: Callable[..., ApiClient]) -> None:
    client = make_client(make_settings(clean_db, rate_limit_per_minute=2, trusted_proxies=["127.0.0.0/8"]))
    codes = {
        ip: [client.get("/api/v1/parking/lots", headers={"X-Forwarded-For": ip}).status_code for _ in range(3)]
        for ip in ("192.0.2.1", "192.0.2.2")
    }
    assert codes == {"192.0.2.1": [200, 200, 429], "192.0.2.2": [200, 200, 429]}


# -- trusted hosts --------------------------------------------------------------------------------------------------
def test_an_untrusted_host_header_is_refused_and_never_echoed(
    clean_db: str, make_client: Callable[..., ApiClient]
) -> None:
    client = make_client(make_settings(clean_db, trusted_hosts=["parking.example.org"]))
    r = client.get("/api/v1/parking/lots/", headers={"Host": "evil.example"})
    assert r.status_code == 400 and "evil.example" not in r.text and "evil.example" not in str(r.headers)
    r = client.get("/api/v1/parking/lots", headers={"Host": "parking.example.org"})
    assert r.status_code == 200
    assert client.get("/health", headers={"Host": "localhost:8000"}).status_code == 200  # the healthcheck


# -- rate limiter bookkeeping ---------------------------------------------------------------------------------------
def test_rate_limiter_bookkeeping_stays_constant_per_request_beyond_50000_clients() -> None:
    clock = [0.0]
    limiter = RateLimiter(600, clock=lambda: clock[0])
    for i in range(50_500):  # all within one minute: none may be forgotten as idle
        clock[0] = i * 0.001
        limiter.check(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    assert len(limiter) == limiter.max_clients
    t0 = time.perf_counter()
    for i in range(20_000):
        clock[0] = 51.0 + i * 0.0001
        limiter.check(f"172.16.{(i >> 8) & 255}.{i & 255}")
    per_request = (time.perf_counter() - t0) / 20_000
    assert per_request < 50e-6, f"{per_request * 1e6:.1f} µs per request"  # a scan of 50,000 buckets takes ms
    assert len(limiter) == limiter.max_clients
    clock[0] += 61.0
    limiter.check("late")
    assert len(limiter) == 1  # idle a minute: full again, forgotten


# -- a real uvicorn process ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge_api(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, int]]:
    metrics_port = free_port()
    service, base = api_service(
        db_url,
        tmp_path_factory.mktemp("edge"),
        SSE_MAX_STREAMS="3",
        SSE_MAX_STREAMS_PER_CLIENT="2",
        TRUSTED_PROXIES='["127.0.0.1"]',
        API_HEADER_TIMEOUT="1",
        API_BODY_TIMEOUT="1",
        API_MAX_CONCURRENCY="8",
        API_METRICS_PORT=str(metrics_port),
        KEY_FAILURES_PER_MINUTE="0",
        TRUSTED_HOSTS='["parking.example.org"]',
    )
    start_api(service, base)
    try:
        yield base, int(base.rsplit(":", 1)[1]), metrics_port
    finally:
        service.stop()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _status(s: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


def _request(port: int, path: str, client: str = "", extra: str = "") -> tuple[socket.socket, int]:
    s = _connect(port)
    forwarded = f"X-Forwarded-For: {client}\r\n" if client else ""
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{forwarded}{extra}\r\n".encode())
    return s, _status(s)


def _status_of(port: int, path: str, client: str = "") -> int:
    s, status = _request(port, path, client)
    s.close()
    return status


def _closed_within(s: socket.socket, seconds: float) -> bool:
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_live_streams_are_capped_per_client_and_in_all(edge_api: tuple[str, int, int]) -> None:
    _, port, _ = edge_api
    a1, a1_status = _request(port, "/api/v1/parking/stream", "198.51.100.1")
    a2, a2_status = _request(port, "/api/v1/parking/stream", "198.51.100.1")
    a3, a3_status = _request(port, "/api/v1/parking/stream", "198.51.100.1")
    b1, b1_status = _request(port, "/api/v1/buses/stream", "198.51.100.2")
    c1, c1_status = _request(port, "/api/v1/parking/stream", "198.51.100.3")
    try:
        assert (a1_status, a2_status, a3_status, b1_status, c1_status) == (200, 200, 429, 200, 503)
        a1.close()  # its slot comes back once the server notices
        wait_for(lambda: _status_of(port, "/api/v1/parking/stream", "198.51.100.3") == 200, 20, "a freed slot")
    finally:
        for s in (a1, a2, a3, b1, c1):
            s.close()


def test_slow_headers_and_slow_bodies_are_cut_off(edge_api: tuple[str, int, int]) -> None:
    _, port, _ = edge_api
    slow = _connect(port)
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1")  # headers never finished
    t0 = time.monotonic()
    assert _closed_within(slow, 8), "a client that never finished its headers kept its connection"
    assert time.monotonic() - t0 < 6
    slow.close()
    body = _connect(port)
    body.sendall(
        b"POST /api/v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: "
        + PAGES_KEY.encode()
        + b'\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"site_id":'
    )
    assert _status(body) == 408
    body.close()
    ok, status = _request(port, "/health")  # a prompt client is served
    assert status == 200
    ok.close()


def test_concurrency_cap_answers_503_and_recovers(edge_api: tuple[str, int, int]) -> None:
    _, port, _ = edge_api
    idle = [_connect(port) for _ in range(8)]
    try:
        time.sleep(0.2)
        s, status = _request(port, "/health")
        s.close()
        assert status == 503
    finally:
        for c in idle:
            c.close()
    wait_for(lambda: _status_of(port, "/health") == 200, 10, "the API after the idle clients left")


def test_metrics_answer_only_on_the_internal_port(edge_api: tuple[str, int, int]) -> None:
    _, port, metrics_port = edge_api
    s, status = _request(port, "/metrics", extra=f"X-API-Key: {PAGES_KEY}\r\n")
    s.close()
    assert status == 404
    s, status = _request(metrics_port, "/metrics")
    s.close()
    assert status == 200
    # Prometheus names the service (Host: api): fine on the internal port, refused on the public one
    for p, wanted in ((metrics_port, 200), (port, 400)):
        s = _connect(p)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: api\r\n\r\n")
        assert _status(s) == wanted
        s.close()


def test_log_lines_escape_control_characters(edge_api: tuple[str, int, int], tmp_path: Path) -> None:
    import io
    import logging

    from stadtpuls.logs import configure_logging

    out = io.StringIO()
    configure_logging("INFO", "kv", out)
    logging.getLogger("t").warning("wrong API key", extra={"client": "1.2.3.4\r\nlevel=error event=forged\x1b[2J"})
    configure_logging("INFO", "json", out)
    logging.getLogger("t").warning("x\u2028y", extra={"path": "/\x9b31m"})
    configure_logging("WARNING", "kv")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "\x1b" not in lines[0] and "\\r\\nlevel=error" in lines[0] and "\\u001b" in lines[0]
    assert json.loads(lines[1])["path"] == "/\x9b31m" and "\x9b" not in lines[1] and "\u2028" not in lines[1]
