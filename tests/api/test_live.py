"""The live hub and the SSE streams, against a real uvicorn server and real NOTIFY."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from apitest import ApiClient, Seeder, hours_ago, make_settings, now

from stadtpuls.api import sse as api_sse
from stadtpuls.api.main import create_app
from stadtpuls.demo.embedded import free_port
from stadtpuls.settings import Settings


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_config=None, lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live() -> Iterator[Callable[[Settings], LiveServer]]:
    servers: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        s = LiveServer(settings)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    name, data = None, None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and name is not None:
            yield name, data
            name, data = None, None


def notify(url: str, payload: str = '{"parking": 1, "bins": 0, "passengers": 0, "environment": 0}') -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_notify('stadtpuls', %s)", (payload,))


def _wait_for(stream: Iterator[tuple[str, Any]], predicate: Callable[[str, Any], bool]) -> tuple[str, Any]:
    for name, data in stream:
        if predicate(name, data):
            return name, data
    raise AssertionError("stream ended")


def test_parking_stream_sends_lots_on_connect_and_on_notify(live: Any, clean_db: str, seed: Seeder) -> None:
    devs = seed.lot("lot-a", 2)
    seed.park(devs[0], hours_ago(0.5), False)
    server = live(make_settings(clean_db, api_cache_ttl=30, live_poll_interval=60))
    with httpx.Client(base_url=server.url, timeout=10) as http, http.stream("GET", "/api/v1/parking/stream") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        stream = events(r)
        name, first = next(stream)
        assert name == "lots" and first["count"] == 1 and first["data"][0]["free"] == 1
        seed.park(devs[1], now(), False)
        t0 = time.monotonic()
        notify(clean_db)
        _, changed = _wait_for(stream, lambda n, d: n == "lots" and d["data"][0]["free"] == 2)
        assert changed["data"][0]["unknown"] == 0
        print(f"notify-to-event {1000 * (time.monotonic() - t0):.0f} ms")
        assert http.get("/api/v1/parking/lots").json() == changed  # the same body as the list endpoint


def test_a_towns_stream_sends_its_lots_and_only_changes_it_can_see(live: Any, clean_db: str, seed: Seeder) -> None:
    seed.conn.execute("INSERT INTO tenants (slug, name) VALUES ('north', 'Nordstadt'), ('south', 'Südheim')")
    north, south = seed.lot("n-lot", 2), seed.lot("s-lot", 2)
    seed.conn.execute("UPDATE sites SET tenant = 'north' WHERE site_id LIKE 'n-%'")
    seed.conn.execute("UPDATE sites SET tenant = 'south' WHERE site_id LIKE 's-%'")
    seed.park(north[0], hours_ago(0.5), False)
    server = live(make_settings(clean_db, api_cache_ttl=30, live_poll_interval=60))
    url = "/api/v1/t/north/parking/stream"
    with httpx.Client(base_url=server.url, timeout=10) as http, http.stream("GET", url) as r:
        assert r.status_code == 200
        stream = events(r)
        name, first = next(stream)
        assert name == "lots" and [lot["lot_id"] for lot in first["data"]] == ["n-lot"] and first["count"] == 1
        seed.park(south[0], now(), True)  # another town's change: the hub's body changes, the town's does not
        notify(clean_db)
        seed.park(north[1], now(), False)
        time.sleep(0.3)
        notify(clean_db)
        name, changed = _wait_for(stream, lambda n, d: n == "lots")
        assert [lot["lot_id"] for lot in changed["data"]] == ["n-lot"] and changed["data"][0]["free"] == 2
        assert http.get("/api/v1/t/north/parking/lots").json() == changed
        assert len(http.get("/api/v1/parking/lots").json()["data"]) == 2


def test_stream_falls_back_to_polling_and_pings(
    live: Any, clean_db: str, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_sse, "PING_S", 0.3)
    devs = seed.lot("lot-a", 1)
    seed.park(devs[0], hours_ago(0.5), True)
    server = live(make_settings(clean_db, api_cache_ttl=30, live_poll_interval=0.5))
    with httpx.Client(base_url=server.url, timeout=10) as http, http.stream("GET", "/api/v1/parking/stream") as r:
        stream = events(r)
        assert next(stream)[1]["data"][0]["occupied"] == 1
        _wait_for(stream, lambda n, d: n == "ping")
        seed.park(devs[0], now(), False)  # no NOTIFY: the poll finds it
        _wait_for(stream, lambda n, d: n == "lots" and d["data"][0]["free"] == 1)


def test_many_stream_clients_share_one_listen_connection(
    live: Any, clean_db: str, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_sse, "PING_S", 0.2)
    seed.lot("lot-a", 1)
    server = live(make_settings(clean_db, api_cache_ttl=30, live_poll_interval=60))
    with httpx.Client(base_url=server.url, timeout=10) as http:
        streams = [http.stream("GET", "/api/v1/parking/stream") for _ in range(4)]
        responses = [s.__enter__() for s in streams]
        try:
            readers = [events(resp) for resp in responses]  # kept: a dropped reader closes its connection
            for reader in readers:
                assert next(reader)[0] == "lots"
            assert len(server.app.state.ctx.hub.topics["lots"].subscribers) == 4
            listening = seed.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
            ).fetchone()[0]
            assert listening == 1
        finally:
            for s in streams:
                s.__exit__(None, None, None)
    subscribers = server.app.state.ctx.hub.topics["lots"].subscribers
    deadline = time.monotonic() + 5
    while subscribers and time.monotonic() < deadline:  # gone clients are noticed at the latest at the next ping
        time.sleep(0.05)
    assert not subscribers


def test_bus_stream_sends_lines_and_vehicles(live: Any, clean_db: str, seed: Seeder) -> None:
    seed.site("line-1", "line")
    seed.site("bus-1", "vehicle", parent_id="line-1", capacity=50)
    dev = seed.device("bus-1", codec="opensource/esp32-paxcounter")
    server = live(make_settings(clean_db, api_cache_ttl=30, live_poll_interval=60))
    with httpx.Client(base_url=server.url, timeout=10) as http, http.stream("GET", "/api/v1/buses/stream") as r:
        stream = events(r)
        got = {next(stream)[0], next(stream)[0]}
        assert got == {"lines", "vehicles"}
        seed.passengers(dev, now(), pax_count=20)
        notify(clean_db, '{"parking": 0, "bins": 0, "passengers": 3, "environment": 0}')
        _, lines = _wait_for(stream, lambda n, d: n == "lines" and d["data"][0]["passengers"] == 20)
        assert lines["data"][0]["occupancy_pct"] == 40.0


def test_cached_lots_are_served_until_a_notify_invalidates_them(make_client: Any, clean_db: str, seed: Seeder) -> None:
    devs = seed.lot("lot-a", 1)
    seed.park(devs[0], hours_ago(0.5), True)
    c: ApiClient = make_client(make_settings(clean_db, api_cache_ttl=60, live_poll_interval=60))
    hub = c.ctx.hub
    deadline = time.monotonic() + 5
    while not hub.listening and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.get("/api/v1/parking/lots").json()["data"][0]["occupied"] == 1
    refreshes = hub.topics["lots"].refreshes
    seed.park(devs[0], now(), False)
    for _ in range(5):
        assert c.get("/api/v1/parking/lots").json()["data"][0]["occupied"] == 1  # cached
    assert hub.topics["lots"].refreshes == refreshes
    notify(clean_db, "not json")  # an unknown payload refreshes everything
    deadline = time.monotonic() + 5
    while c.get("/api/v1/parking/lots").json()["data"][0]["free"] != 1:
        assert time.monotonic() < deadline, "cache never invalidated"
        time.sleep(0.05)
    assert hub.notifications == 1
