"""SensorThings API through Fraunhofer's client (``frost_sta_client``) against a real uvicorn server on a seeded
database: list Things, follow their Datastreams, read Observations with filters and expansion, and page through a
week of readings, which must equal the store's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import frost_sta_client as fsc
import pytest
import uvicorn
from apitest import Seeder, hours_ago, make_settings
from statest import public_id, seed_town, site_id

from stadtpuls.api.main import create_app
from stadtpuls.demo.embedded import free_port

# the client calls furl's deprecated ``pathstr`` on every request (the client's code, not ours)
pytestmark = pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")
WEEK = 7 * 24 * 4  # a reading every 15 minutes


@pytest.fixture
def service(clean_db: str) -> Iterator[fsc.SensorThingsService]:
    port = free_port()
    config = uvicorn.Config(
        create_app(make_settings(clean_db)), host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield fsc.SensorThingsService(f"http://127.0.0.1:{port}/sta/v1.1")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_client_lists_things_and_follows_their_datastreams(service: fsc.SensorThingsService, seed: Seeder) -> None:
    seed_town(seed)
    things = service.things().query().filter("properties/kind eq 'bin'").orderby("name", "ASC").list()
    assert [t.name for t in things] == ["Bin 1", "Bin 2"]
    assert things.get(0).id == site_id(seed, "bin-1")
    datastreams = things.get(0).get_datastreams().query().list()
    assert sorted(d.name for d in datastreams) == sorted(
        f"Bin 1 {q}"
        for q in ("fill level", "distance to fill surface", "temperature", "battery voltage", "battery level")
    )
    fill = next(d for d in datastreams if d.name == "Bin 1 fill level")
    assert fill.unit_of_measurement.symbol == "%"
    found = service.datastreams().find(fill.id)
    assert found.name == fill.name


def test_client_reads_observations_with_filter_and_expansion(service: fsc.SensorThingsService, seed: Seeder) -> None:
    town = seed_town(seed)
    ds = service.datastreams().find(public_id(seed, town.bins[1]) * 100 + 1)
    obs = ds.get_observations().query().filter("result ge 61").orderby("phenomenonTime", "DESC").list()
    assert [o.result for o in obs] == [61.5, 61.0]
    expanded = (
        service.things()
        .query()
        .filter(f"id eq {site_id(seed, 'bin-2')}")
        .expand(
            "Datastreams($filter=ObservedProperty/id eq 1;$expand=Observations($top=1;$orderby=phenomenonTime desc))"
        )
        .list()
    )
    (thing,) = list(expanded)
    (stream,) = thing.datastreams.entities
    assert [o.result for o in stream.observations.entities] == [61.5]


def test_client_pages_through_a_week_of_readings_equal_to_the_store(
    service: fsc.SensorThingsService, seed: Seeder
) -> None:
    dev = seed.bin("bin-week")
    start = hours_ago(7 * 24)
    seed.levels(dev, [(start + timedelta(minutes=15 * k), (k * 7) % 100 + 0.5) for k in range(WEEK)])
    ds = service.datastreams().find(public_id(seed, dev) * 100 + 1)
    pages: list[int] = []
    got = [
        (_time(o.phenomenon_time), o.result)
        for o in ds.get_observations().query().top(100).list(callback=pages.append, step_size=100)
    ]
    stored = seed.conn.execute(
        "SELECT time, fill_pct::numeric::float8 FROM bin_levels WHERE dev_eui = %s ORDER BY time", (dev,)
    ).fetchall()
    assert len(got) == WEEK and got == [tuple(r) for r in stored]
    assert pages == list(range(0, WEEK, 100))  # seven pages of 100 and one of 72, each through @iot.nextLink
