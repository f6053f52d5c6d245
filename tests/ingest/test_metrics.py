"""Metrics and health of a running ingest service, over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

import orjson

from stadtpuls.demo.embedded import free_port
from stadtpuls.ingest.metrics import reason_label
from stadtpuls.ingest.service import IngestService
from stadtpuls.simulators.loadgen import make_fleet, make_garbage, make_uplinks
from stadtpuls.simulators.mqtt_raw import publish_all

from .conftest import register, wait_for


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_metrics_count_received_stored_duplicates_and_dead_letters(
    clean_db: str, broker_url: str, run_ingest: Callable[..., IngestService]
) -> None:
    fleet = make_fleet(20)
    register(clean_db, fleet.yaml())
    good = make_uplinks(fleet, 300)
    bad = [(t, p) for t, p, _ in make_garbage(fleet, 40)]
    port = free_port()
    run_ingest(clean_db, broker_url, metrics_port=port)
    publish_all(broker_url, good + good[:50] + bad)
    wait_for(lambda: _value(_get(port, "/metrics")[1].decode(), "stadtpuls_ingest_received_total") == 390)
    text = wait_for(
        lambda: (
            (t := _get(port, "/metrics")[1].decode())
            and _value(t, "stadtpuls_ingest_stored_total") + _value(t, "stadtpuls_ingest_duplicates_total") == 370
            and t
        )
    )
    assert _value(text, "stadtpuls_ingest_stored_total") == 320  # 300 good + 20 raw uplinks of bad payloads
    assert _value(text, "stadtpuls_ingest_duplicates_total") == 50
    assert 'stadtpuls_ingest_dead_letters_total{reason="unknown device",stage="device"} 10.0' in text
    assert 'stage="envelope"' in text and "stadtpuls_ingest_batch_seconds_bucket" in text
    status, body = _get(port, "/health")
    health = orjson.loads(body)
    assert status == 200 and health["status"] == "ok" and health["database"] == "up"
    assert health["mqtt"] == "connected" and health["spool_messages"] == 0
    assert _get(port, "/nothing")[0] == 404


def test_dead_letter_reasons_become_bounded_labels() -> None:
    assert reason_label("envelope", "not JSON: unexpected character: line 1 column 7 (char 6)") == "not JSON"
    assert reason_label("codec", "nwave/nps405: fPort 2 frame needs 3 bytes, got 1") == (
        "fPort N frame needs N bytes, got N"
    )
    assert reason_label("device", "unknown device") == "unknown device"
