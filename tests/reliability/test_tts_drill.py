"""Drill: ``stadtpuls ingest`` killed while a TTS application streams at QoS 0, then restarted; the uplinks of the
outage come back from the Storage Integration (a storage endpoint of our own that keeps every uplink published).

Counted: every uplink published is stored once (0 lost, 0 doubled), and the time from the restart until every
uplink published before it is stored ("caught up"). The outage is ``STADTPULS_TTS_DRILL_OUTAGE_S`` seconds (30 by
default, so that CI stays short; docs/reliability.md gives the figures of a 120 s run).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest

from stadtpuls.simulators.messages import tts_topic, tts_uplink

from .conftest import IngestProcess, backfill_helpers, ingest_helpers, storage_server, write_artifact

OUTAGE_S = float(os.environ.get("STADTPULS_TTS_DRILL_OUTAGE_S", "30"))
RATE = 20.0  # uplinks per second, as a busy TTS application of a town
DEVICES = [(f"sensor-{k:02d}", f"70b3d5000001{k:04x}") for k in range(20)]
FLEET = "devices:\n" + "".join(
    f'  - {{dev_eui: "{eui}", codec: nwave/nps405, lns_device_id: {dev}}}\n' for dev, eui in DEVICES
)


class TtsStream(threading.Thread):
    """Publishes uplinks at QoS 0 at ``RATE`` per second; the storage keeps each one, as TTS's does."""

    def __init__(self, broker_url: str, storage: Any) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(broker_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tts-drill-stream")
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self.storage = storage
        self.stop = threading.Event()
        self.times: list[datetime] = []

    def run(self) -> None:
        app, tenant = backfill_helpers.APP, backfill_helpers.TENANT
        start = time.monotonic()
        while not self.stop.is_set():
            i = len(self.times)
            dev, eui = DEVICES[i % len(DEVICES)]
            now = datetime.now(UTC)
            up = tts_uplink(
                device_id=dev, app_id=app, dev_eui=eui, received_at=now, f_port=1, payload=b"\x95", f_cnt=i // 20 + 1
            )
            self.storage.uplinks.append(up)
            self.client.publish(tts_topic(app, dev, tenant=tenant), orjson.dumps(up), qos=0)
            self.times.append(now)
            self.stop.wait(max(0.0, start + (i + 1) / RATE - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()


def _stored(url: str, until: datetime | None = None) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT dedup_key) FROM uplinks WHERE %s::timestamptz IS NULL OR time <= %s",
            (until, until),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@pytest.mark.slow
@pytest.mark.timeout(300 + 2 * OUTAGE_S)
def test_ingest_killed_during_a_qos0_tts_stream_backfills_every_uplink_once(
    clean_db: str, broker_url: str, tmp_path: Path
) -> None:
    ingest_helpers.register(clean_db, FLEET)
    storage = storage_server.StorageServer(backfill_helpers.APP, backfill_helpers.KEY)
    storage.start()
    sources = backfill_helpers.sources_file(tmp_path, storage.url, broker_url, page_size=1000)
    env = {
        "STADTPULS_DATABASE_URL": clean_db,
        "STADTPULS_SOURCES_FILE": str(sources),
        "STADTPULS_MQTT_CLIENT_ID": "tts-drill",
        "STADTPULS_SPOOL_DIR": str(tmp_path / "spool"),
        backfill_helpers.KEY_ENV: backfill_helpers.KEY,
    }
    first = IngestProcess(tmp_path / "ingest-1.log", **env)
    processes = [first]
    stream = TtsStream(broker_url, storage)
    try:
        first.wait_log("MQTT connected", timeout=30)
        stream.start()
        time.sleep(10)
        first.kill()  # SIGKILL: whatever was in flight is gone, and TTS keeps nothing for us
        killed_at = len(stream.times)
        time.sleep(OUTAGE_S)
        second = IngestProcess(tmp_path / "ingest-2.log", **env)
        processes.append(second)
        restart = datetime.now(UTC)
        restarted = time.monotonic()
        published_before = sum(1 for t in list(stream.times) if t <= restart)
        deadline = restarted + 120
        while _stored(clean_db, restart)[1] < published_before:
            assert time.monotonic() < deadline, (_stored(clean_db, restart), published_before)
            time.sleep(0.1)
        caught_up_s = time.monotonic() - restarted
        time.sleep(5)  # the stream goes on after the restart
        stream.stop.set()
        stream.join(10)
        total = len(stream.times)
        deadline = time.monotonic() + 60
        while _stored(clean_db)[1] < total and time.monotonic() < deadline:
            time.sleep(0.1)
        # the last uplinks of the stream reach the hub over MQTT; no backfill is needed for them
        stored, distinct = _stored(clean_db)
        assert second.stop() == 0
    finally:
        stream.stop.set()
        for process in processes:
            process.kill()
            process.stop()
        storage.stop()
    figures = {
        "published": total,
        "published_during_outage": published_before - killed_at,
        "stored": distinct,
        "lost": total - distinct,
        "doubled": stored - distinct,
        "outage_s": OUTAGE_S,
        "caught_up_s": round(caught_up_s, 2),
        "storage_requests": len(storage.requests),
    }
    write_artifact("drills", f"tts_qos0_outage_{int(OUTAGE_S)}s", figures)
    assert figures["lost"] == 0 and figures["doubled"] == 0, figures
    assert figures["published_during_outage"] >= RATE * OUTAGE_S * 0.8, figures
