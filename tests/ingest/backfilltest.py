"""Helpers of the backfill tests: a TTS application's uplinks, its sources file, a QoS 0 stream."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt

from stadtpuls.simulators.messages import tts_topic, tts_uplink

APP, TENANT, KEY_ENV, KEY = "stadtwerke-parken", "ttn", "TEST_TTS_KEY", "NNSXS.TESTKEY.SECRET"
DEVICES = [(f"parker-{k}", f"70b3d5000000000{k}") for k in range(3)]
FLEET = "devices:\n" + "".join(
    f'  - {{dev_eui: "{eui}", codec: nwave/nps405, lns_device_id: {dev}}}\n' for dev, eui in DEVICES
)


def uplinks(n: int, start: datetime | None = None, step_s: float = 10.0) -> list[dict[str, Any]]:
    """``n`` uplinks of the three parking sensors, ``step_s`` apart from ``start`` (default: n * step_s ago)."""
    t0 = start or datetime.now(UTC) - timedelta(seconds=n * step_s + 60)
    out = []
    for i in range(n):
        dev, eui = DEVICES[i % 3]
        out.append(
            tts_uplink(
                device_id=dev,
                app_id=APP,
                dev_eui=eui,
                received_at=t0 + timedelta(seconds=i * step_s),
                f_port=1,
                payload=b"\x95" if i % 2 else b"\x14",
                f_cnt=i // 3 + 1,
            )
        )
    return out


def sources_file(tmp_path: Path, cluster: str, mqtt_url: str, **backfill: Any) -> Path:
    """A sources file with the one TTS application (MQTT at ``mqtt_url``, storage at ``cluster``)."""
    options = {"interval": "1h", "page_size": 7, **backfill}
    doc = {
        "sources": [
            {
                "name": "stadtwerke",
                "kind": "tts",
                "cluster": cluster,
                "application_id": APP,
                "tenant": TENANT,
                "api_key_env": KEY_ENV,
                "mqtt_url": mqtt_url,
                "backfill": options,
            }
        ]
    }
    path = tmp_path / "sources.yaml"
    path.write_bytes(orjson.dumps(doc))  # JSON is YAML
    return path


def publish_qos0(url: str, messages: list[dict[str, Any]]) -> None:
    """Publish TTS uplinks at QoS 0 (as The Things Stack does): nothing is kept for a subscriber that is away."""
    parts = urlsplit(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"tts-{time.monotonic_ns()}")
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        infos = [
            client.publish(tts_topic(APP, m["end_device_ids"]["device_id"], tenant=TENANT), orjson.dumps(m), qos=0)
            for m in messages
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
