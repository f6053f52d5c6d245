"""The SensorThings API MQTT extension (receive updates): each new Observation, as the JSON ``GET
/sta/v1.1/Observations('<id>')`` answers, published on the hub's broker to ``v1.1/Datastreams(<id>)/Observations``
and ``v1.1/Observations``.

Steps of :meth:`StaMqttBridge.run`:

1. ``LISTEN stadtpuls``: the writer notifies after each commit that stored readings (a poll each ``poll`` seconds
   covers a lost notification);
2. read the Observations with a time after the watermark less ``LOOKBACK_S`` (the API's own union over the reading
   columns, :data:`stadtpuls.api.sta.observations.ALL_OBSERVATIONS`), so a reading committed a little after a newer
   one is still found;
3. publish each one not published yet (QoS 1), then move the watermark to the newest time seen.

A reading older than the watermark less ``LOOKBACK_S`` when it is committed (a spool replayed hours later, a
backfill) is history, not an update: it is served by the HTTP API and not published.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as mqtt
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from stadtpuls.api.sta.entities import ENTITY_SETS
from stadtpuls.api.sta.observations import ALL_OBSERVATIONS
from stadtpuls.api.sta.query import entity_json
from stadtpuls.logs import get_logger
from stadtpuls.schema import NOTIFY_CHANNEL

__all__ = ["LOOKBACK_S", "StaMqttBridge", "topics"]

LOOKBACK_S = 300.0
RETRY_S = 5.0
VERSION = "v1.1"
log = get_logger("stadtpuls.bridges.sta_mqtt")
_QUERY = sql.SQL("SELECT * FROM ({}) e WHERE phenomenon_time > %s ORDER BY phenomenon_time, datastream_id").format(
    ALL_OBSERVATIONS
)


def topics(datastream_id: int) -> tuple[str, str]:
    """The topics an Observation of ``datastream_id`` is published to."""
    return f"{VERSION}/Datastreams({datastream_id})/Observations", f"{VERSION}/Observations"


class StaMqttBridge:
    """Publishes new Observations from ``database_url`` to the broker at ``mqtt_url`` until :meth:`stop`;
    ``base`` is the public address of the SensorThings API (for ``@iot.selfLink``)."""

    def __init__(
        self, database_url: str, mqtt_url: str, base: str, *, poll: float = 1.0, tls: dict[str, Any] | None = None
    ) -> None:
        self.database_url = database_url
        self.base = base.rstrip("/")
        self.poll = poll
        self.published = 0
        self._stop = threading.Event()
        parts = urlsplit(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
        if parts.username is not None:
            self.client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            self.client.tls_set(**(tls or {}))
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._host, self._port = (
            parts.hostname or "127.0.0.1",
            parts.port or (8883 if parts.scheme == "mqtts" else 1883),
        )
        self._seen: dict[str, datetime] = {}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Publish until :meth:`stop`; a lost database connection is reopened every ``RETRY_S`` seconds, and the
        watermark kept, so what was committed meanwhile (within ``LOOKBACK_S``) is still published."""
        self.client.connect_async(self._host, self._port)
        self.client.loop_start()
        watermark: datetime | None = None
        try:
            while not self._stop.is_set():
                try:
                    watermark = self._serve(watermark)
                except psycopg.OperationalError as e:
                    log.warning("database not reachable; retrying", extra={"error": str(e).strip()[:200]})
                    self._stop.wait(RETRY_S)
        finally:
            self.client.loop_stop()
            self.client.disconnect()

    def _serve(self, watermark: datetime | None) -> datetime:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
            if watermark is None:
                row = conn.execute("SELECT now()").fetchone()
                watermark = row[0] if row else datetime.now().astimezone()
                self.publish_new(conn, watermark, prime=True)  # what was stored before the start is history
                log.info("publishing SensorThings Observations over MQTT", extra={"broker": self._host})
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=self.poll, stop_after=1):
                    pass
                watermark = self.publish_new(conn, watermark)
        return watermark

    def publish_new(self, conn: psycopg.Connection, watermark: datetime, *, prime: bool = False) -> datetime:
        """Publish the Observations after ``watermark - LOOKBACK_S`` not published yet; the new watermark.
        With ``prime``, only note them as published."""
        since = watermark - timedelta(seconds=LOOKBACK_S)
        cur = conn.cursor(row_factory=dict_row)
        rows = cur.execute(_QUERY, (since,)).fetchall()
        es = ENTITY_SETS["Observations"]
        for row in rows:
            if row["id"] in self._seen:
                continue
            self._seen[row["id"]] = row["phenomenon_time"]
            if prime:
                continue
            body = orjson.dumps(entity_json(self.base, es, row))
            for topic in topics(row["datastream_id"]):
                self.client.publish(topic, body, qos=1)
            self.published += 1
            watermark = max(watermark, row["phenomenon_time"])
        self._seen = {k: t for k, t in self._seen.items() if t > since}
        return watermark
