"""Road distances from an OSRM-compatible /table service: the project's own server of that endpoint, over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import uvicorn
from apitest import OP, ApiClient, Seeder, hours_ago

from stadtpuls.api.osrm import RoutingServiceError, lookup, table_app, table_km
from stadtpuls.planning import distance_matrix
from stadtpuls.settings import Settings

POINTS = [(51.34, 12.37), (51.35, 12.38), (51.33, 12.36), (51.31, 12.40)]


@pytest.fixture(scope="module")
def router_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(table_app(road_factor=1.5), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_table_km_reads_the_service_matrix(router_url: str) -> None:
    km = asyncio.run(table_km(router_url, POINTS))
    assert km.shape == (4, 4)
    np.testing.assert_allclose(km, distance_matrix(POINTS, road_factor=1.5), atol=0.001)
    sub = lookup(POINTS, km)([POINTS[2], POINTS[0]])
    assert sub[0, 1] == pytest.approx(km[2, 0])


def test_table_km_errors_carry_the_url(router_url: str) -> None:
    with pytest.raises(RoutingServiceError) as err:
        asyncio.run(table_km(router_url + "/nothing-here", POINTS))
    assert err.value.status == 404 and err.value.url.endswith("/nothing-here")


def test_pickup_plan_uses_the_routing_service(settings: Settings, make_client, seed: Seeder, router_url: str) -> None:  # type: ignore[no-untyped-def]
    for site, lat, fill in (("bin-a", 51.35, 90.0), ("bin-b", 51.33, 85.0)):
        dev = seed.bin(site, lat=lat, lon=12.38)
        seed.levels(dev, [(hours_ago(h), fill - h * 0.1) for h in range(48, -1, -1)])
    client: ApiClient = make_client(settings.model_copy(update={"osrm_url": router_url}))
    plan = client.get("/api/v1/waste/pickups", headers=OP).json()
    assert plan["distances"] == "routing service"
    assert {s["site_id"] for s in plan["data"]} == {"bin-a", "bin-b"}
    plain: ApiClient = make_client(settings)
    other = plain.get("/api/v1/waste/pickups", headers=OP).json()
    assert other["distances"] == "great-circle x road factor"
    assert plan["distance_km"] == pytest.approx(other["distance_km"] * 1.5 / 1.3, rel=0.01)
