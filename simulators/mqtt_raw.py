"""A minimal MQTT 3.1.1 publisher for load runs: pre-built PUBLISH packets at QoS 1 written to the socket in large
chunks, with a reader thread that counts PUBACKs.

paho-mqtt spends tens of microseconds of Python per message on its publish path; here a message costs the
concatenation of its packet. QoS 1 is kept: every packet has an identifier, at most ``window`` are unacknowledged
at a time (identifiers are never reused while in flight), and :meth:`close` waits until every one is
acknowledged. :func:`publish_all` publishes a prepared list and returns when the broker holds every message (the
tests, fault drills and the ingest benchmark use it).

Exceptions::

    RawMqttError        connection refused or lost, protocol violation, acknowledgements missing
                        (attributes: reason, unacked)
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

import numpy as np

__all__ = ["RawMqttError", "RawPublisher", "count_acks", "publish_all", "publish_packet"]

_PINGREQ = b"\xc0\x00"
_PIDS = [struct.pack("!H", i) for i in range(65536)]
_DISCONNECT = b"\xe0\x00"


class RawMqttError(Exception):
    def __init__(self, reason: str, unacked: int = 0) -> None:
        super().__init__(reason if not unacked else f"{reason} ({unacked} messages unacknowledged)")
        self.reason = reason
        self.unacked = unacked


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return struct.pack("!H", len(s)) + s


def publish_packet(topic: bytes, payload: bytes, packet_id: int) -> bytes:
    """A QoS 1 PUBLISH packet."""
    rest = 2 + len(topic) + 2 + len(payload)
    return b"".join(
        (b"\x32", _varint(rest), struct.pack("!H", len(topic)), topic, struct.pack("!H", packet_id), payload)
    )


def count_acks(buf: bytes, outstanding: np.ndarray) -> tuple[int, int, int]:
    """Take the PUBACKs of the complete packets at the start of ``buf`` off ``outstanding`` (1 = packet id in
    flight): (acknowledged, bytes consumed, acknowledgements of ids not in flight).

    The broker sends a publisher nothing but 4-byte PUBACKs (and PINGRESPs), so a run of PUBACKs is checked in
    one numpy step; anything else is walked packet by packet."""
    whole = len(buf) // 4 * 4
    if whole:
        packets = np.frombuffer(buf, dtype=np.uint8, count=whole).reshape(-1, 4)
        if (packets[:, 0] == 0x40).all() and (packets[:, 1] == 2).all():
            pids = (packets[:, 2].astype(np.int64) << 8) | packets[:, 3]
            known = outstanding[pids].astype(bool)
            outstanding[pids] = 0
            n = int(known.sum())
            return n, whole, len(pids) - n
    acked = pos = unknown = 0
    while len(buf) - pos >= 2:
        kind, length = buf[pos], buf[pos + 1]  # every packet a publisher receives here is short
        if len(buf) - pos < 2 + length:
            break
        if kind == 0x40 and length == 2:
            pid = (buf[pos + 2] << 8) | buf[pos + 3]
            if outstanding[pid]:
                outstanding[pid] = 0
                acked += 1
            else:
                unknown += 1
        pos += 2 + length
    return acked, pos, unknown


class RawPublisher:
    def __init__(
        self,
        url: str,
        client_id: str = "stadtpuls-sim-load",
        *,
        window: int = 20000,
        keepalive: int = 60,
        ca_file: str | None = None,
    ) -> None:
        if not 1 <= window <= 60000:
            raise ValueError("window must lie in 1..60000")
        parts = urlsplit(url)
        self.window = window
        self.keepalive = keepalive
        tls = parts.scheme in ("mqtts", "ssl")
        host = parts.hostname or "127.0.0.1"
        sock = socket.create_connection((host, parts.port or (8883 if tls else 1883)), timeout=10)
        if tls:
            ctx = ssl.create_default_context(cafile=ca_file)
            sock = ctx.wrap_socket(sock, server_hostname=host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        flags = 0x02  # clean session
        payload = _string(client_id.encode())
        if parts.username:
            flags |= 0x80
            payload += _string(unquote(parts.username).encode())
            if parts.password is not None:
                flags |= 0x40
                payload += _string(unquote(parts.password).encode())
        var = _string(b"MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
        sock.sendall(b"\x10" + _varint(len(var) + len(payload)) + var + payload)
        ack = self._read_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            sock.close()
            raise RawMqttError(f"connection refused (CONNACK return code {ack[3]})")
        sock.settimeout(None)
        self._cond = threading.Condition()
        self._outstanding = np.zeros(65536, dtype=np.uint8)  # 1: packet id in flight
        self.sent = 0
        self.acked = 0
        self.errors = 0
        self._next_id = 1
        self._heads: dict[bytes, bytes] = {}
        self._closed = False
        self._error: str | None = None
        self._last_send = time.monotonic()
        self._reader = threading.Thread(target=self._read_loop, name="mqtt-raw-reader", daemon=True)
        self._reader.start()

    def _read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RawMqttError("connection closed by the broker")
            buf += chunk
        return buf

    def _read_loop(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(262144)
                if not chunk:
                    raise RawMqttError("connection closed by the broker")
                buf += chunk
                acked, pos, unknown = count_acks(buf, self._outstanding)
                self.errors += unknown
                buf = buf[pos:]
                if acked:
                    with self._cond:
                        self.acked += acked
                        self._cond.notify_all()
        except (OSError, RawMqttError) as e:
            with self._cond:
                if not self._closed:
                    self._error = str(e)
                self._cond.notify_all()

    def publish_many(self, items: list[tuple[bytes, bytes]]) -> None:
        """Publish ``(topic, payload)`` pairs in order, blocking while ``window`` messages are unacknowledged."""
        i = 0
        n = len(items)
        while i < n:
            with self._cond:
                while self.sent - self.acked >= self.window and self._error is None:
                    self._cond.wait(1.0)
                if self._error is not None:
                    raise RawMqttError(self._error, self.sent - self.acked)
                room = min(self.window - (self.sent - self.acked), n - i)
            packets: list[bytes] = []
            first = pid = self._next_id
            self._outstanding[(first - 1 + np.arange(room)) % 65535 + 1] = 1
            heads = self._heads
            for topic, payload in items[i : i + room]:
                head = heads.get(topic)
                if head is None:
                    head = heads[topic] = struct.pack("!H", len(topic)) + topic
                rest = len(head) + 2 + len(payload)
                if rest < 16384:
                    fixed = bytes((0x32, (rest & 0x7F) | 0x80, rest >> 7)) if rest >= 128 else bytes((0x32, rest))
                else:
                    fixed = b"\x32" + _varint(rest)
                packets += (fixed, head, _PIDS[pid], payload)
                pid = pid + 1 if pid < 65535 else 1
            with self._cond:
                self.sent += room
            self._next_id = pid
            self.sock.sendall(b"".join(packets))
            self._last_send = time.monotonic()
            i += room

    def ping_if_idle(self) -> None:
        if time.monotonic() - self._last_send > self.keepalive / 2:
            self.sock.sendall(_PINGREQ)
            self._last_send = time.monotonic()

    def wait_acked(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.acked < self.sent and self._error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RawMqttError("timed out waiting for PUBACKs", self.sent - self.acked)
                self._cond.wait(min(left, 1.0))
            if self._error is not None and self.acked < self.sent:
                raise RawMqttError(self._error, self.sent - self.acked)

    def close(self, timeout: float = 60.0) -> None:
        try:
            self.wait_acked(timeout)
        finally:
            with self._cond:
                self._closed = True
            try:
                self.sock.sendall(_DISCONNECT)
            except OSError:
                pass
            self.sock.close()
            self._reader.join(5)


def publish_all(
    url: str,
    messages: Sequence[tuple[str, bytes]],
    *,
    window: int = 20_000,
    chunk: int = 500,
    client_id: str = "",
    timeout: float = 300.0,
    rate: float | None = None,
) -> float:
    """Publish ``messages`` (topic, payload) in order at QoS 1, ``chunk`` at a time (at most ``rate`` messages a
    second when given, for a stream that lasts); returns the seconds from the connection until the broker has
    acknowledged the last one."""
    start = time.perf_counter()
    pub = RawPublisher(url, client_id or f"stadtpuls-pub-{time.monotonic_ns()}", window=window)
    if rate is not None:
        chunk = max(1, min(chunk, int(rate / 20)))  # about 20 chunks a second
    try:
        encoded = {topic: topic.encode() for topic in {topic for topic, _ in messages}}
        for i in range(0, len(messages), chunk):
            pub.publish_many([(encoded[topic], payload) for topic, payload in messages[i : i + chunk]])
            if rate is not None:
                ahead = (i + chunk) / rate - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
        pub.wait_acked(timeout)
        return time.perf_counter() - start
    finally:
        pub.close(timeout)
