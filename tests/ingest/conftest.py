"""Fixtures for the ingest tests: a registered fleet, an in-process ingest service on the project broker, waiting."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from stadtpuls.demo.embedded import EmbeddedBroker
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.service import IngestService
from stadtpuls.settings import Settings


def register(url: str, yaml_text: str) -> None:
    """Import a registry document (YAML) into the database; fails the test on row errors."""
    fleet = parse_text(yaml_text, "yaml")
    with psycopg.connect(url) as conn:
        report = apply(conn, fleet)
    assert not report.errors, report.errors


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value or fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def drop_session(mqtt_url: str, client_id: str) -> None:
    """Remove a persistent session from the broker, so it stops collecting the later tests' messages."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    parts = urlsplit(mqtt_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=True, properties=props)
    client.loop_start()
    wait_for(client.is_connected, timeout=10)
    client.disconnect()
    client.loop_stop()


def ingest_settings(db_url: str, mqtt_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "mqtt_url": mqtt_url,
        "mqtt_client_id": f"test-ingest-{uuid.uuid4().hex[:8]}",
        "batch_size": 2000,
        "flush_interval": 0.05,
        "metrics_port": 0,
        "spool_dir": tmp_path / "spool",
        "registry_refresh": 0.5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def run_ingest(tmp_path: Path) -> Iterator[Callable[..., IngestService]]:
    """Start in-process ingest services (``run_ingest(db_url, mqtt_url, **settings)``); all stopped at the end."""
    started: list[IngestService] = []

    def start(db_url: str, mqtt_url: str, **overrides: Any) -> IngestService:
        settings = ingest_settings(db_url, mqtt_url, tmp_path, **overrides)
        service = IngestService(settings, database_url=db_url, mqtt_url=mqtt_url)
        service.start()
        assert service.source.connected.wait(10), "ingest did not connect to the broker"
        started.append(service)
        return service

    yield start
    for service in started:
        if service._thread is not None and service._thread.is_alive():
            service.stop()
        drop_session(service.source.config.url, service.settings.mqtt_client_id)


@pytest.fixture
def storage() -> Iterator[Any]:
    """A TTS Storage Integration of our own (``storage_server.StorageServer``) for the application of the backfill
    tests (``backfilltest.APP``), started empty."""
    from .backfilltest import APP, KEY  # imported here: the reliability suite loads this file on its own
    from .storage_server import StorageServer

    server = StorageServer(APP, KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker_url(project_broker: EmbeddedBroker) -> str:
    return project_broker.url
