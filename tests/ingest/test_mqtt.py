"""The MQTT source on the project broker: manual acks with a persistent session, back-pressure, shared
subscriptions, and what it logs."""

from __future__ import annotations

import gc
import logging
import shutil
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import pytest

from stadtpuls.demo.embedded import EmbeddedBroker
from stadtpuls.ingest.inbox import Inbox, Message
from stadtpuls.ingest.mqtt import MqttConfig, MqttSource, is_loopback
from stadtpuls.simulators.mqtt_raw import publish_all

from .conftest import wait_for


def _source(url: str, client_id: str, inbox: Inbox, topic: str, group: str | None = None) -> MqttSource:
    source = MqttSource(MqttConfig(url=url, client_id=client_id, topics=[topic], share_group=group), inbox)
    source.start()
    assert source.connected.wait(10)
    return source


def _drain(inbox: Inbox) -> list[Message]:
    return inbox.take(1_000_000, 0.0, 0.5)


def test_unacknowledged_messages_are_delivered_again_to_the_same_session(broker_url: str) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    client_id = f"test-session-{uuid.uuid4().hex[:8]}"
    inbox = Inbox(10_000)
    source = _source(broker_url, client_id, inbox, topic + "/#")
    publish_all(broker_url, [(f"{topic}/{i}", str(i).encode()) for i in range(100)])
    wait_for(lambda: len(inbox) == 100)
    got = _drain(inbox)
    assert [m.payload for m in got] == [str(i).encode() for i in range(100)]
    assert source.ack(got[:40]) == 40
    source.close()

    inbox = Inbox(10_000)
    source = _source(broker_url, client_id, inbox, topic + "/#")
    wait_for(lambda: len(inbox) == 60)
    again = _drain(inbox)
    assert sorted(int(m.payload) for m in again) == list(range(40, 100))
    source.ack(again)
    source.close()

    inbox = Inbox(10_000)
    source = _source(broker_url, client_id, inbox, topic + "/#")
    assert inbox.take(1000, 0.0, 1.0) == []  # everything was acknowledged
    source.close()


def test_a_full_inbox_stops_reading_and_nothing_is_lost(broker_url: str) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    inbox = Inbox(200)
    source = _source(broker_url, f"test-bp-{uuid.uuid4().hex[:8]}", inbox, topic)
    publish_all(broker_url, [(topic, str(i).encode() + b"x" * 500) for i in range(5_000)])
    wait_for(lambda: len(inbox) >= 200)
    time.sleep(0.5)
    # the network thread waits for room: at most one read chunk (256 KiB, ~500 messages) beyond the limit
    assert len(inbox) < 1_000
    received: list[Message] = []
    while len(received) < 5_000:
        batch = inbox.take(100, 0.01, 5.0)
        assert batch, "stream stalled"
        received.extend(batch)
        source.ack(batch)
    assert sorted(int(m.payload.split(b"x")[0]) for m in received) == list(range(5_000))
    source.close()


def test_two_workers_on_a_shared_subscription_split_the_stream(broker_url: str) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    inboxes = [Inbox(10_000), Inbox(10_000)]
    sources = [
        _source(broker_url, f"test-share-{i}-{uuid.uuid4().hex[:6]}", inboxes[i], topic, group="g1") for i in range(2)
    ]
    publish_all(broker_url, [(topic, str(i).encode()) for i in range(1_000)])
    wait_for(lambda: len(inboxes[0]) + len(inboxes[1]) == 1_000)
    parts = [_drain(i) for i in inboxes]
    assert all(parts), "both workers get a share"
    assert sorted(int(m.payload) for p in parts for m in p) == list(range(1_000))
    for s, p in zip(sources, parts, strict=True):
        s.ack(p)
        s.close()


def test_loopback_hosts_are_recognised() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.5") and not is_loopback("broker.example.org")


def test_plain_connection_to_a_remote_host_warns_and_never_logs_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    source = MqttSource(MqttConfig(url="mqtt://city:s3cr%40t@192.0.2.10:1883", topics=["x"]), Inbox(10))
    source.start(wait=0.2)
    source.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "without TLS" in r.getMessage()]
    assert warnings and warnings[0].host == "192.0.2.10"
    for record in caplog.records:
        text = record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())
        assert "s3cr" not in text


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # amqtt's own stream leftovers
def test_a_broker_without_mqtt5_is_spoken_to_in_mqtt_3_1_1(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "amqtt", prefer="amqtt")  # an MQTT 3.1.1 broker
    url = broker.start()
    try:
        inbox = Inbox(100)
        source = MqttSource(MqttConfig(url=url, client_id="test-v311", topics=["t/#"]), inbox)
        source.start(wait=2)
        assert source.connected.wait(10) and source.protocol == 4  # MQTT 3.1.1
        publish_all(url, [("t/1", b"one"), ("t/2", b"two")])
        wait_for(lambda: len(inbox) == 2)
        got = _drain(inbox)
        assert [m.payload for m in got] == [b"one", b"two"]
        source.ack(got)
        source.close()
    finally:
        broker.stop()
        with warnings.catch_warnings():  # the in-process broker leaves its closed streams to the collector
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_after_a_broker_restart_the_source_reconnects_and_the_session_resumes() -> None:
    # Mosquitto started as root drops to its own user: its persistence directory must be writable for that user
    # (pytest's tmp_path is private to root), or the session would silently not survive the restart.
    data = Path(tempfile.mkdtemp(prefix="stadtpuls-broker-"))
    data.chmod(0o777)
    broker = EmbeddedBroker(data)  # the project's config: persistent sessions survive a restart
    url = broker.start()
    try:
        inbox = Inbox(10_000)
        source = _source(url, f"test-restart-{uuid.uuid4().hex[:6]}", inbox, "r/#")
        publish_all(url, [("r/1", b"before")])
        wait_for(lambda: len(inbox) == 1)
        source.ack(_drain(inbox))
        generation = source.generation
        broker.stop()
        wait_for(lambda: not source.connected.is_set(), timeout=10)
        broker.start()
        publish_all(url, [("r/2", b"while away"), ("r/3", b"after")])  # queued for the stored session
        wait_for(lambda: source.connected.is_set(), timeout=30)  # reconnected with backoff, subscribed again
        wait_for(lambda: len(inbox) == 2, timeout=10)
        got = _drain(inbox)
        assert [m.payload for m in got] == [b"while away", b"after"]
        assert source.generation > generation and all(m.generation == source.generation for m in got)
        assert source.ack(got) == 2
        source.close()
    finally:
        broker.stop()
        shutil.rmtree(data, ignore_errors=True)
