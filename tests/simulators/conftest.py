"""A simulated week of the small town with every fault kind switched on, shared by the simulator tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from stadtpuls.simulators import FaultConfig, Message, SimConfig, Simulation, TruthWriter
from stadtpuls.simulators.timebase import DAY_US, parse_start

WEEK_START = "2025-03-03"  # a Monday


@dataclass
class Week:
    sim: Simulation
    messages: list[Message]
    lines: list[dict[str, Any]]  # measurement lines of the ground truth
    summary: dict[str, Any]


def run_week(city: str = "small", seed: int = 11, faults: str = "default", days: int = 7) -> Week:
    truth = TruthWriter(keep=True)
    config = SimConfig(
        city=city,
        seed=seed,
        start_us=parse_start(WEEK_START),
        duration_us=days * DAY_US,
        faults=FaultConfig.parse(faults),
    )
    sim = Simulation(config, truth)
    messages = list(sim.messages())
    *lines, last = truth.lines
    return Week(sim, messages, lines, last["summary"])


@pytest.fixture(scope="session")
def small_week() -> Week:
    return run_week()


class Subscriber:
    """Collects every message on the broker (topic filter ``#``, QoS 1) from the moment it is connected."""

    def __init__(self, url: str, topic: str = "#") -> None:
        import threading
        from urllib.parse import urlsplit

        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        parts = urlsplit(url)
        subscribed = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-test-{id(self)}", protocol=mqtt.MQTTv311)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
        client.on_message = self._on_message
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        client.loop_start()
        assert subscribed.wait(10), "subscription not acknowledged"
        self.client = client

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 60.0) -> list[tuple[str, bytes]]:
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n and time.monotonic() < deadline:
                self._cond.wait(0.5)
        return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(project_broker):
    sub = Subscriber(project_broker.url)
    yield sub
    sub.close()
