"""Where simulated messages go: an MQTT broker (paho-mqtt, QoS 1, paced to simulated time) or a file of JSON
lines (``{"t", "topic", "payload_b64"}``) that :func:`read_messages` reads back for ``--replay``.

Pacing: with ``speed`` X a message simulated at ``t`` is published ``(t - start) / X`` seconds after the run
began (1 = real time, 60 = an hour a minute); ``speed`` 0 publishes as fast as the broker acknowledges.

Exceptions::

    PublishError        the broker refused the connection or did not acknowledge (attributes: reason, unacked)
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import orjson

from .engine import Message
from .timebase import US, iso_us, parse_start

__all__ = ["FileSink", "MqttSink", "PublishError", "pace", "read_messages"]


class PublishError(Exception):
    def __init__(self, reason: str, unacked: int = 0) -> None:
        super().__init__(reason if not unacked else f"{reason} ({unacked} messages unacknowledged)")
        self.reason = reason
        self.unacked = unacked


class FileSink:
    """Writes messages as JSON lines; byte-identical for identical message streams."""

    def __init__(self, path: str | Path) -> None:
        self._fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sent = 0

    def send(self, msg: Message) -> None:
        self._fh.write(
            orjson.dumps(
                {"t": iso_us(msg.t_us), "topic": msg.topic, "payload_b64": base64.b64encode(msg.payload).decode()}
            )
            + b"\n"
        )
        self.sent += 1

    def close(self) -> None:
        self._fh.close()


def read_messages(path: str | Path) -> Iterator[Message]:
    """The messages of a file written by :class:`FileSink`, in order."""
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                obj = orjson.loads(line)
                yield Message(
                    parse_start(obj["t"].replace("Z", "+00:00")), obj["topic"], base64.b64decode(obj["payload_b64"])
                )


class MqttSink:
    """paho-mqtt publisher at QoS 1 that blocks while ``window`` messages are unacknowledged."""

    def __init__(
        self,
        url: str,
        client_id: str = "stadtpuls-sim",
        *,
        window: int = 200,
        inflight: int = 20,
        ca_file: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        import paho.mqtt.client as mqtt

        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "ssl")
        self.window = window
        self.sent = 0
        self.acked = 0
        self._cond = threading.Condition()
        self._error: str | None = None
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True
        )
        client.max_inflight_messages_set(inflight)  # paho's ack handling slows down with large windows
        client.max_queued_messages_set(0)
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)
        if tls:
            client.tls_set(ca_certs=ca_file)
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect
        client.on_connect = self._on_connect
        self._connected = threading.Event()
        try:
            client.connect(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), keepalive=60)
        except OSError as e:
            raise PublishError(f"cannot connect to {parts.hostname}:{parts.port}: {e}") from None
        client.loop_start()
        self.client = client
        if not self._connected.wait(connect_timeout) or self._error is not None:
            client.disconnect()
            client.loop_stop()
            raise PublishError(self._error or f"no answer from the broker at {parts.hostname}:{parts.port}")

    def _on_connect(self, client: object, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            with self._cond:
                self._error = f"connection refused: {reason}"
                self._cond.notify_all()
        self._connected.set()

    def _on_publish(self, client: object, userdata: object, mid: int, reason: object, props: object) -> None:
        with self._cond:
            self.acked += 1
            self._cond.notify_all()

    def _on_disconnect(self, client: object, userdata: object, flags: object, reason: object, props: object) -> None:
        if getattr(reason, "is_failure", False):
            with self._cond:
                self._error = f"disconnected: {reason}"
                self._cond.notify_all()

    def send(self, msg: Message) -> None:
        with self._cond:
            while self.sent - self.acked >= self.window and self._error is None:
                self._cond.wait(1.0)
            if self._error is not None:
                raise PublishError(self._error, self.sent - self.acked)
            self.sent += 1
        self.client.publish(msg.topic, msg.payload, qos=1)

    def close(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        try:
            with self._cond:
                while self.acked < self.sent and self._error is None and time.monotonic() < deadline:
                    self._cond.wait(0.5)
                missing = self.sent - self.acked
            if missing:
                raise PublishError(self._error or "timed out waiting for PUBACKs", missing)
        finally:
            self.client.disconnect()
            self.client.loop_stop()


def pace(
    messages: Iterable[Message], speed: float, start_us: int, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Message]:
    """Messages released at their simulated time divided by ``speed`` (0: no waiting)."""
    if speed <= 0:
        yield from messages
        return
    wall0 = time.monotonic()
    for msg in messages:
        due = wall0 + (msg.t_us - start_us) / US / speed
        delay = due - time.monotonic()
        if delay > 0:
            sleep(delay)
        yield msg
