"""``stadtpuls ngsild-notify`` against a real HTTP receiver started here: the changed entities are upserted, a
refused batch is retried, and after a new reading only the entity that changed is sent again."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from apitest import Seeder, hours_ago
from ngsildtest import check, town

from stadtpuls.bridges.ngsild_notify import NgsiLdNotifier
from stadtpuls.demo.embedded import free_port


class Broker:
    """Records each upsert; answers the first ``refuse`` of them with 503."""

    def __init__(self, refuse: int = 1) -> None:
        self.requests: list[tuple[str, str, int, list[dict[str, Any]]]] = []
        self.refuse = refuse
        broker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = 503 if len(broker.requests) < broker.refuse else 204
                broker.requests.append((self.path, self.headers["Content-Type"], status, body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[list[dict[str, Any]]]:
        return [body for _, _, status, body in self.requests if status == 204]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker()
    yield b
    b.close()


def test_changed_entities_reach_the_context_broker_and_a_refusal_is_retried(
    clean_db: str, seed: Seeder, broker: Broker
) -> None:
    seeded = town(seed)
    notifier = NgsiLdNotifier(clean_db, broker.url, tz="Europe/Berlin", interval=0.2)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(notifier.run(),), daemon=True)
    thread.start()
    try:
        _wait(lambda: len(broker.accepted()) >= 1)
        path, content_type, status, first = broker.requests[0]
        assert (path, content_type, status) == ("/ngsi-ld/v1/entityOperations/upsert", "application/ld+json", 503)
        (sent,) = broker.accepted()
        assert sent == first  # the refused batch, retried as it was
        assert {e["type"] for e in sent} == {"OffStreetParking", "ParkingSpot", "WasteContainer", "CrowdFlowObserved"}
        for e in sent:
            assert e["@context"][0].startswith("https://smart-data-models.github.io/")
            check(e)
        time.sleep(0.5)
        assert len(broker.accepted()) == 1, "unchanged entities were sent again"
        seed.levels(seeded["bin"], [(hours_ago(0.1), 90.0)])
        seed.conn.execute("NOTIFY stadtpuls, '{\"bins\": 1}'")
        _wait(lambda: len(broker.accepted()) >= 2, timeout=5)
        (update,) = broker.accepted()[1]
        assert update["id"] == "urn:ngsi-ld:WasteContainer:bin-1"
        assert update["fillingLevel"]["value"] == 0.9
    finally:
        loop.call_soon_threadsafe(notifier.stop)
        thread.join(timeout=10)
        loop.close()


def test_an_unreachable_database_is_retried_not_fatal(broker: Broker) -> None:
    notifier = NgsiLdNotifier("postgresql://nobody@127.0.0.1:1/none", broker.url, tz="UTC", interval=0.2)

    async def run_briefly() -> None:
        task = asyncio.create_task(notifier.run())
        await asyncio.sleep(0.5)
        assert not task.done(), "the notifier gave up"
        notifier.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(run_briefly())
    assert broker.requests == []
