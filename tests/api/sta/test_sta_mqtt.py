"""The SensorThings MQTT extension end to end: a parking uplink published through the real broker and the real
``stadtpuls ingest`` reaches a paho subscriber of ``v1.1/Datastreams(<id>)/Observations`` within a second."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from pagestest import Publisher, seed_city, space_eui

from stadtpuls.bridges.sta_mqtt import StaMqttBridge, topics

BASE = "http://hub.example/sta/v1.1"


@pytest.fixture(scope="module")
def city(db_url: str) -> str:
    seed_city(db_url)
    return db_url


@pytest.fixture
def bridge(city: str, project_broker: Any) -> Iterator[StaMqttBridge]:
    b = StaMqttBridge(city, project_broker.url, BASE, poll=1.0)
    thread = threading.Thread(target=b.run, daemon=True)
    thread.start()
    try:
        yield b
    finally:
        b.stop()
        thread.join(timeout=10)


class Subscriber:
    def __init__(self, url: str, topic: str) -> None:
        self.messages: queue.Queue[tuple[float, bytes]] = queue.Queue()
        self.subscribed = threading.Event()
        host, port = url.removeprefix("mqtt://").split(":")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.messages.put((time.time(), m.payload))
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect(host, int(port))
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(10), "no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_an_uplink_through_the_ingest_reaches_a_subscriber_within_a_second(
    city: str, ingest: Publisher, project_broker: Any, bridge: StaMqttBridge
) -> None:
    with psycopg.connect(city) as conn:
        row = conn.execute("SELECT public_id FROM devices WHERE dev_eui = %s", (space_eui(0, 1),)).fetchone()
    assert row is not None
    ds = row[0] * 100 + 6  # the space's occupancy
    sub = Subscriber(project_broker.url, topics(ds)[0])
    try:
        time.sleep(1.5)  # the bridge has primed itself with what was stored before it started
        assert sub.messages.empty(), "history was published as if new"
        for occupied in (True, False):
            sent = ingest.parking(0, 1, occupied)
            received, payload = sub.messages.get(timeout=5)
            body = orjson.loads(payload)
            assert received - sent < 1.0, f"observation arrived {received - sent:.2f} s after the uplink"
            assert body["result"] is occupied
            assert body["@iot.id"].startswith(f"{ds}-")
            assert body["@iot.selfLink"] == f"{BASE}/Observations('{body['@iot.id']}')"
            assert body["Datastream@iot.navigationLink"].endswith("/Datastream")
            with psycopg.connect(city) as conn:
                stored = conn.execute(
                    "SELECT max(time) FROM parking_events WHERE dev_eui = %s", (space_eui(0, 1),)
                ).fetchone()
            assert stored is not None
            assert body["phenomenonTime"] == stored[0].isoformat().replace("+00:00", "Z")
        assert sub.messages.empty()
    finally:
        sub.close()


def test_an_unreachable_database_is_retried_not_fatal(project_broker: Any) -> None:
    b = StaMqttBridge("postgresql://nobody@127.0.0.1:1/none", project_broker.url, BASE)
    thread = threading.Thread(target=b.run, daemon=True)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the bridge gave up"
    b.stop()
    thread.join(timeout=10)
    assert not thread.is_alive() and b.published == 0
