"""A fast QoS 1 publisher of pre-built messages, for load tests, fault drills and the ingest benchmark.

It speaks MQTT 3.1.1 on a plain socket: every PUBLISH packet of a run is encoded up front, written in large
chunks, and the broker's PUBACKs are counted while a window of unacknowledged packets stays below
``window`` (packet ids are reused only once acknowledged). ``publish_all`` returns when every message has
been acknowledged by the broker, so a caller knows the broker holds all of them.

Exceptions::

    PublishError        the broker refused the connection or closed it early (attributes: acked, sent)
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["PublishError", "encode_publish", "publish_all"]


class PublishError(Exception):
    def __init__(self, message: str, *, sent: int = 0, acked: int = 0) -> None:
        super().__init__(message)
        self.sent = sent
        self.acked = acked


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_publish(topic: str, payload: bytes, mid: int, qos: int = 1) -> bytes:
    """One MQTT 3.1.1 PUBLISH packet (QoS 0 or 1)."""
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + payload
    return bytes([0x30 | (qos << 1)]) + _varint(len(body)) + body


def _connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", 60) + struct.pack("!H", len(cid)) + cid
    return b"\x10" + _varint(len(body)) + body


def publish_all(
    url: str,
    messages: Sequence[tuple[str, bytes]],
    *,
    qos: int = 1,
    window: int = 20_000,
    chunk: int = 500,
    client_id: str = "",
    rate: float = 0.0,
    timeout: float = 300.0,
) -> float:
    """Publish ``messages`` (topic, payload) in order; returns the seconds taken until the last PUBACK.

    ``rate`` > 0 paces the stream at that many messages per second."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(_connect_packet(client_id or f"stadtpuls-pub-{time.monotonic_ns()}"))
        connack = _recv_exact(sock, 4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise PublishError(f"connection refused: {connack.hex()}")
        return _stream(sock, messages, qos, window, chunk, rate)
    finally:
        sock.close()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise PublishError("broker closed the connection")
        data += more
    return data


def _stream(
    sock: socket.socket, messages: Sequence[tuple[str, bytes]], qos: int, window: int, chunk: int, rate: float
) -> float:
    n = len(messages)
    start = time.perf_counter()
    sent = acked = 0
    pending = b""
    while sent < n or (qos and acked < sent):
        if sent < n and (not qos or sent - acked < window):
            if rate > 0:
                due = start + sent / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(min(delay, 0.05))
                    continue
            end = min(n, sent + chunk)
            packets = [
                encode_publish(topic, payload, (i % 65535) + 1, qos)
                for i, (topic, payload) in enumerate(messages[sent:end], start=sent)
            ]
            sock.sendall(b"".join(packets))
            sent = end
            if not qos:
                continue
            sock.setblocking(False)
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                data = None
            finally:
                sock.setblocking(True)
            if data == b"":
                raise PublishError("broker closed the connection", sent=sent, acked=acked)
        else:
            data = sock.recv(1 << 20)
            if not data:
                raise PublishError("broker closed the connection", sent=sent, acked=acked)
        if data:
            pending += data
            usable = len(pending) - len(pending) % 4
            acked += usable // 4
            pending = pending[usable:]
    return time.perf_counter() - start
