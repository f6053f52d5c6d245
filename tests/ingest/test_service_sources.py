"""One ingest, several sources: a TTS application at QoS 0 with its storage backfill, and MQTT brokers, end to end
on the project broker, the real database and a storage endpoint of our own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from stadtpuls.ingest.service import IngestService
from stadtpuls.ingest.sources import load_sources
from stadtpuls.settings import Settings

from .backfilltest import FLEET, KEY, KEY_ENV, publish_qos0, sources_file, uplinks
from .conftest import drop_session, ingest_settings, register, scalar, wait_for
from .storage_server import StorageServer
from .tcp_proxy import TcpProxy


@pytest.fixture
def services() -> Iterator[list[IngestService]]:
    started: list[IngestService] = []
    yield started
    for service in started:
        if service._thread is not None and service._thread.is_alive():
            service.stop()
        for client in service.mqtt:
            drop_session(service.settings.mqtt_url.get_secret_value(), client.config.client_id)  # type: ignore[union-attr]


def _start(
    db: str, broker: str, path: Path, tmp_path: Path, services: list[IngestService], key: str = KEY
) -> IngestService:
    settings: Settings = ingest_settings(db, broker, tmp_path, sources_file=path)
    service = IngestService(settings, database_url=db, sources=load_sources(settings, {KEY_ENV: key}))
    service.start()
    services.append(service)
    return service


def _backfill_runs(service: IngestService, state: str) -> float:
    value: float = service.metrics.backfill_runs.labels("stadtwerke", state)._value.get()
    return value


def test_uplinks_dropped_on_the_qos0_stream_are_backfilled_and_every_uplink_is_stored_once(
    clean_db: str, broker_url: str, storage: StorageServer, tmp_path: Path, services: list[IngestService]
) -> None:
    register(clean_db, FLEET)
    ups = uplinks(30)
    service = _start(clean_db, broker_url, sources_file(tmp_path, storage.url, broker_url), tmp_path, services)
    wait_for(service.source.connected.is_set, timeout=10)
    wait_for(lambda: _backfill_runs(service, "caught_up") >= 1)  # the run at start: the storage is still empty
    live = [u for i, u in enumerate(ups) if i % 3]  # every third uplink is lost on the way
    publish_qos0(broker_url, live)
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") == len(live))
    storage.uplinks = ups  # the storage has them all
    service.backfills["stadtwerke"].trigger()  # as the schedule or a reconnect does
    wait_for(lambda: _backfill_runs(service, "caught_up") >= 2)
    wait_for(lambda: not len(service.inbox) and service.metrics.stored._value.get() == 30)
    assert scalar(clean_db, "SELECT count(*) FROM uplinks") == 30
    assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 30
    assert service.metrics.duplicates._value.get() == len(live)  # fetched again, stored once
    assert service.metrics.backfill_fetched.labels("stadtwerke")._value.get() == 30
    status, body = service.metrics.health()
    state = body["sources"]["stadtwerke"]
    assert status == 200 and state["kind"] == "tts" and state["connected"] is True
    assert state["last_message_age_s"] is not None and state["lag_s"] is not None
    assert state["backfill"]["state"] == "caught_up" and state["backfill"]["fetched"] == 30
    assert scalar(clean_db, "SELECT cursor FROM source_cursors").isoformat() == state["backfill"]["cursor"]


def test_wrong_key_gives_one_clear_error_and_the_mqtt_path_goes_on(
    clean_db: str,
    broker_url: str,
    storage: StorageServer,
    tmp_path: Path,
    services: list[IngestService],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stadtpuls.ingest.backfill")
    ups = uplinks(9)
    storage.uplinks = ups
    path = sources_file(tmp_path, storage.url, broker_url)
    service = _start(clean_db, broker_url, path, tmp_path, services, key="NNSXS.WRONG")
    wait_for(service.source.connected.is_set, timeout=10)
    for runs in (1, 2, 3):
        wait_for(lambda runs=runs: _backfill_runs(service, "refused") >= runs)
        if runs < 3:
            service.backfills["stadtwerke"].trigger()
    publish_qos0(broker_url, ups)
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") == 9)
    errors = [r for r in caplog.records if r.name == "stadtpuls.ingest.backfill" and r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "refused" in errors[0].getMessage() and "HTTP 401" in errors[0].error  # type: ignore[attr-defined]
    assert KEY_ENV in errors[0].hint  # type: ignore[attr-defined]
    assert len(storage.requests) == 3  # one request per run: a refused key is not retried
    _, body = service.metrics.health()
    assert body["sources"]["stadtwerke"]["backfill"]["state"] == "refused"


def test_a_source_that_cannot_connect_does_not_stop_the_others(
    clean_db: str, broker_url: str, tmp_path: Path, services: list[IngestService]
) -> None:
    doc: dict[str, Any] = {
        "sources": [
            {"name": "kreis", "kind": "mqtt", "url": broker_url, "topics": ["v3/+/devices/+/up"]},
            {
                "name": "away",
                "kind": "tts",
                "cluster": "http://127.0.0.1:1",
                "application_id": "elsewhere",
                "api_key_env": KEY_ENV,
                "mqtt_url": "mqtt://127.0.0.1:1",
                "backfill": {"enabled": False},
            },
        ]
    }
    path = tmp_path / "sources.yaml"
    path.write_bytes(orjson.dumps(doc))
    service = _start(clean_db, broker_url, path, tmp_path, services)
    assert [c.config.client_id for c in service.mqtt] == [
        f"{service.settings.mqtt_client_id}-kreis",
        f"{service.settings.mqtt_client_id}-away",
    ]
    wait_for(service.mqtt[0].connected.is_set, timeout=10)
    publish_qos0(broker_url, uplinks(6))
    wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") == 6)
    status, body = service.metrics.health()
    assert body["sources"]["kreis"]["connected"] is True and body["sources"]["away"]["connected"] is False
    assert "backfill" not in body["sources"]["away"]
    assert status == 503 and body["mqtt"] == "disconnected"  # degraded: one source is away
    assert service.metrics.source_connected.labels("kreis")._value.get() == 1
    assert service.metrics.source_connected.labels("away")._value.get() == 0


def test_a_reconnect_starts_a_backfill_that_fetches_what_the_stream_lost_meanwhile(
    clean_db: str, broker_url: str, storage: StorageServer, tmp_path: Path, services: list[IngestService]
) -> None:
    parts = urlsplit(broker_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 1883)
    try:
        via_proxy = f"mqtt://127.0.0.1:{proxy.port}"
        service = _start(clean_db, broker_url, sources_file(tmp_path, storage.url, via_proxy), tmp_path, services)
        wait_for(service.source.connected.is_set, timeout=10)
        wait_for(lambda: _backfill_runs(service, "caught_up") >= 1)  # at start (the schedule is an hour)
        ups = uplinks(15)
        before, during = ups[:6], ups[6:]
        publish_qos0(broker_url, before)
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") == 6)
        proxy.cut()
        wait_for(lambda: not service.source.connected.is_set(), timeout=10)
        publish_qos0(broker_url, during)  # nobody listens: at QoS 0 these are gone from MQTT
        storage.uplinks = before + during
        proxy.restore()
        wait_for(lambda: _backfill_runs(service, "caught_up") >= 2, timeout=60)  # the reconnect's run
        wait_for(lambda: scalar(clean_db, "SELECT count(*) FROM uplinks") == 15)
        assert scalar(clean_db, "SELECT count(DISTINCT dedup_key) FROM uplinks") == 15
    finally:
        proxy.close()
