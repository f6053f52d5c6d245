"""The MQTT side of ingest: a paho-mqtt client with a persistent session, manual acks and back-pressure.

* MQTT v5 with a large Receive Maximum (the broker keeps at most that many unacknowledged messages in flight to
  us) and a session that outlives the connection (``clean_start`` False, session expiry); brokers that refuse
  v5 get MQTT 3.1.1 with ``clean_session`` False. A fixed client id makes the broker keep the session (and the
  messages that arrive meanwhile) across restarts.
* QoS 1 subscriptions to the configured topic filters, each with a ``$share/<group>/`` prefix when a shared
  subscription group is set, so N workers split one stream. Every (re)connect subscribes again.
* TLS (``mqtts://``) with the configured CA, client certificate and key; username/password from the URL. The
  password is never logged. A warning is logged when connecting without TLS to a host that is not loopback.
* Reconnects with exponential backoff (paho's loop, 1 s .. 30 s).
* The network thread does nothing but read: complete PUBLISH packets are cut from a large receive buffer and put
  into the :class:`~ingest.inbox.Inbox` as ``(topic, payload, mid, qos, generation)``; other packets go through
  paho's own handling. When the inbox is full the thread waits, so it stops reading from the socket.
* Messages are acknowledged only by :meth:`MqttSource.ack`, which the worker calls after commit or spool. Acks of
  one batch go out as one write. An ack for a message of an earlier connection is not sent: the broker delivers
  that message again on the new connection, and that copy is acknowledged.
"""

from __future__ import annotations

import ipaddress
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from stadtpuls.logs import get_logger

from .inbox import Inbox, Message

__all__ = ["SESSION_EXPIRY_S", "MqttConfig", "MqttSource", "is_loopback"]

log = get_logger("stadtpuls.ingest.mqtt")
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our session (and its queued messages) this long
_PUBLISH, _PUBACK = 0x30, 0x40
_RECV_CHUNK = 1 << 18
_READ_LIMIT = 1 << 21  # bytes read per wake-up before the messages are handed over


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class MqttConfig:
    url: str
    client_id: str = "stadtpuls-ingest"
    topics: list[str] = field(default_factory=list)
    share_group: str | None = None
    qos: int = 1
    receive_maximum: int = 20000
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: int = 60

    def filters(self) -> list[str]:
        prefix = f"$share/{self.share_group}/" if self.share_group else ""
        return [prefix + t for t in self.topics]


class _Client(mqtt.Client):
    """paho's client with a fast receive path (see the module docstring)."""

    def __init__(self, *args: Any, inbox: Inbox, source: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox = inbox
        self.source = source
        self.last_message = 0.0  # time.time() when the last PUBLISH was read
        self.generation = 0
        self.paused = False
        self._rx = bytearray()
        self._v5 = kwargs.get("protocol") == mqtt.MQTTv5
        self.read_error: OSError | None = None  # why the last connection was lost while reading (TLS alerts)

    def reconnect(self) -> mqtt.MQTTErrorCode:
        self._rx = bytearray()
        self.generation += 1
        return super().reconnect()

    def ack_many(self, mids: list[int]) -> None:
        """Queue one write holding the PUBACKs of ``mids``."""
        if mids:
            blob = b"".join(b"\x40\x02" + (m & 0xFFFF).to_bytes(2, "big") for m in mids)
            self._packet_queue(_PUBACK, blob, 0, 0)

    def _packet_read(self) -> mqtt.MQTTErrorCode:
        if self.paused:
            time.sleep(0.01)
            return mqtt.MQTTErrorCode.MQTT_ERR_AGAIN
        buf = self._rx
        start = len(buf)
        while len(buf) - start < _READ_LIMIT:  # read until the socket (and a TLS layer's buffer) is drained
            try:
                data = self._sock_recv(_RECV_CHUNK)
            except BlockingIOError:
                break
            except OSError as e:
                self.read_error = e
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
            buf += data
        with self._msgtime_mutex:
            self._last_bytes_received = mqtt.time_func()
        out: list[Message] = []
        gen, v5, size, pos, source = self.generation, self._v5, len(buf), 0, self.source
        while size - pos >= 2:
            cmd = buf[pos]
            i, mult, length, complete = pos + 1, 1, 0, False
            for _ in range(4):
                if i >= size:
                    break
                b = buf[i]
                i += 1
                length += (b & 127) * mult
                mult *= 128
                if not b & 128:
                    complete = True
                    break
            else:
                return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL  # a remaining length longer than 4 bytes
            if not complete or size - i < length:
                break  # incomplete packet: wait for more bytes
            body = bytes(buf[i : i + length])
            pos = i + length
            qos = (cmd >> 1) & 3
            if cmd & 0xF0 == _PUBLISH and qos < 2 and length >= 2:
                tlen = (body[0] << 8) | body[1]
                p = 2 + tlen
                mid = 0
                if qos:
                    mid = (body[p] << 8) | body[p + 1]
                    p += 2
                if v5:
                    plen, shift = 0, 0
                    while p < len(body):
                        b = body[p]
                        p += 1
                        plen |= (b & 127) << shift
                        shift += 7
                        if not b & 128:
                            break
                    p += plen
                out.append(Message(body[2 : 2 + tlen].decode("utf-8", "replace"), body[p:], mid, qos, gen, source))
            else:
                rc = self._handle_other(cmd, length, body)
                if rc:
                    return rc
        if pos:
            del buf[:pos]
        if out:
            self.last_message = time.time()
            if not self.inbox.put_many(out):
                return mqtt.MQTTErrorCode.MQTT_ERR_CONN_LOST
        return mqtt.MQTTErrorCode.MQTT_ERR_AGAIN

    def _handle_other(self, cmd: int, length: int, body: bytes) -> mqtt.MQTTErrorCode:
        self._in_packet = {
            "command": cmd,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": length,
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            return self._packet_handle()
        except mqtt.MalformedPacket:
            return mqtt.MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {
                "command": 0,
                "have_remaining": 0,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": 0,
                "packet": bytearray(b""),
                "to_process": 0,
                "pos": 0,
            }


class MqttSource:
    """Connects, subscribes, feeds the inbox and sends acks (see the module docstring)."""

    def __init__(
        self,
        config: MqttConfig,
        inbox: Inbox,
        *,
        source: int = 0,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.inbox = inbox
        self.source = source  # the position of this source: stamped on its messages, so acks come back here
        self.on_connected = on_connected  # called after every (re)connection, from the network thread
        self.connected = threading.Event()
        self.protocol = mqtt.MQTTv5
        self._refused_v5 = False
        self._ever_connected = False
        self._socket_opened = False
        self._last_failure = ""
        self._client: _Client | None = None
        parts = urlsplit(config.url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.port = parts.port or (8883 if self.tls else 1883)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None

    def _make_client(self, protocol: int) -> _Client:
        c = self.config
        kwargs: dict[str, Any] = {"client_id": c.client_id, "protocol": protocol, "manual_ack": True}
        if protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = False
        client = _Client(mqtt.CallbackAPIVersion.VERSION2, inbox=self.inbox, source=self.source, **kwargs)
        if self._username is not None:
            client.username_pw_set(self._username, self._password)
        if self.tls:
            client.tls_set(
                ca_certs=str(c.ca_file) if c.ca_file else None,
                certfile=str(c.cert_file) if c.cert_file else None,
                keyfile=str(c.key_file) if c.key_file else None,
            )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_subscribe = self._on_subscribe
        return client

    def start(self, wait: float = 10.0) -> None:
        """Connect in the background (MQTT v5 first, then 3.1.1 if the broker refuses v5) and start reading."""
        if not self.tls and not is_loopback(self.host):
            log.warning(
                "MQTT connection without TLS to a non-loopback host: credentials and data travel in clear text",
                extra={"host": self.host, "port": self.port},
            )
        log.info(
            "connecting to MQTT broker",
            extra={
                "host": self.host,
                "port": self.port,
                "tls": self.tls,
                "client_id": self.config.client_id,
                "auth": self._username is not None,
            },
        )
        for protocol in (mqtt.MQTTv5, mqtt.MQTTv311):
            self.protocol = protocol
            self._refused_v5 = False
            client = self._make_client(protocol)
            self._client = client
            props = None
            if protocol == mqtt.MQTTv5:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = SESSION_EXPIRY_S
                props.ReceiveMaximum = self.config.receive_maximum
                client.connect_async(self.host, self.port, self.config.keepalive, clean_start=False, properties=props)
            else:
                client.connect_async(self.host, self.port, self.config.keepalive)
            self._socket_opened = False
            client.on_socket_open = self._on_socket_open
            client.loop_start()
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and not self.connected.is_set() and not self._refused_v5:
                time.sleep(0.02)
            if protocol == mqtt.MQTTv5 and self._socket_opened and not self.connected.is_set():
                self._refused_v5 = True  # the broker took the connection but never answered the v5 CONNECT
            if not self._refused_v5:
                if not self.connected.is_set():
                    log.warning(
                        "MQTT broker not reachable yet; retrying in the background",
                        extra={"host": self.host, "port": self.port},
                    )
                return
            client.disconnect()
            client.loop_stop()
            log.info("broker did not accept MQTT v5; using MQTT 3.1.1")

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        self._socket_opened = True

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            if self.protocol == mqtt.MQTTv5 and reason.value in (1, 132):  # unacceptable / unsupported protocol
                self._refused_v5 = True
                client.disconnect()
                return
            log.error("MQTT connection refused", extra={"reason": str(reason)})
            return
        self._last_failure = ""
        self._ever_connected = True
        session = bool(getattr(flags, "session_present", False))
        log.info(
            "MQTT connected",
            extra={
                "session_present": session,
                "protocol": "5" if self.protocol == 5 else "3.1.1",
                "generation": getattr(client, "generation", 0),
            },
        )
        client.subscribe([(f, self.config.qos) for f in self.config.filters()])
        self.connected.set()
        if self.on_connected is not None:
            self.on_connected()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        bad = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        if bad:
            log.error("MQTT subscription refused", extra={"reasons": ",".join(bad)})

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected.clear()
        error, client.read_error = getattr(client, "read_error", None), None
        if isinstance(error, ssl.SSLError):  # e.g. the broker refused our client certificate after the handshake
            self._connect_failed(error)
        elif self.protocol == mqtt.MQTTv5 and not self._ever_connected:
            self._refused_v5 = True  # the broker closed a v5 CONNECT without accepting it: it may speak only 3.1.1
            return
        log.warning("MQTT disconnected", extra={"reason": str(reason)})

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the connect: the exception is the current one
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self._connect_failed(error)

    def _connect_failed(self, error: OSError) -> None:
        """Log why a connection failed: an error each time the reason changes, debug while it repeats."""
        text = f"{type(error).__name__}: {error}"
        extra: dict[str, Any] = {"host": self.host, "port": self.port, "tls": self.tls, "error": text}
        if isinstance(error, ssl.SSLError):
            extra["hint"] = (
                "TLS failed: check STADTPULS_MQTT_CA_FILE (the broker's CA), STADTPULS_MQTT_CERT_FILE and "
                "STADTPULS_MQTT_KEY_FILE (the client certificate the broker requires)"
            )
        if text != self._last_failure:
            self._last_failure = text
            log.error("MQTT connection failed", extra=extra)
        else:
            log.debug("MQTT connection failed again", extra=extra)

    @property
    def last_message(self) -> float:
        """POSIX time of the last message read (0 = none yet)."""
        return self._client.last_message if self._client else 0.0

    @property
    def generation(self) -> int:
        return self._client.generation if self._client else 0

    def ack(self, messages: Iterable[Message]) -> int:
        """Acknowledge QoS 1 messages of the current connection; returns how many acks were queued."""
        client = self._client
        if client is None:
            return 0
        gen, source = client.generation, self.source
        mids = [m.mid for m in messages if m.qos == 1 and m.generation == gen and m.source == source]
        client.ack_many(mids)
        return len(mids)

    def pause(self) -> None:
        """Stop reading from the socket (shutdown); acks still go out."""
        if self._client is not None:
            self._client.paused = True

    def close(self, timeout: float = 5.0) -> None:
        """Send the queued acks, disconnect cleanly (the session stays on the broker) and stop the thread."""
        client = self._client
        if client is None:
            return
        deadline = time.monotonic() + timeout
        while client.want_write() and time.monotonic() < deadline and self.connected.is_set():
            time.sleep(0.01)
        props = None
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        client.disconnect(properties=props)
        self.inbox.close()
        client.loop_stop()
        self._client = None
