"""The raw QoS 1 publisher: correct PUBLISH packets, every message acknowledged and delivered."""

from __future__ import annotations

import collections
import struct

import numpy as np
import pytest

from stadtpuls.simulators.mqtt_raw import RawMqttError, RawPublisher, count_acks, publish_all, publish_packet


def _decode(packet: bytes) -> tuple[int, bytes, int, bytes]:
    assert packet[0] == 0x32  # PUBLISH, QoS 1
    length, mult, i = 0, 1, 1
    while True:
        b = packet[i]
        length += (b & 0x7F) * mult
        mult *= 128
        i += 1
        if not b & 0x80:
            break
    assert length == len(packet) - i
    (tlen,) = struct.unpack("!H", packet[i : i + 2])
    topic = packet[i + 2 : i + 2 + tlen]
    (pid,) = struct.unpack("!H", packet[i + 2 + tlen : i + 4 + tlen])
    return length, topic, pid, packet[i + 4 + tlen :]


@pytest.mark.parametrize("size", [0, 10, 200, 20000, 3_000_000])
def test_publish_packets_encode_topic_id_payload_and_remaining_length(size):
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    _, topic, pid, body = _decode(publish_packet(b"a/b/c", payload, 65535))
    assert (topic, pid, body) == (b"a/b/c", 65535, payload)


def test_acknowledgements_are_taken_off_the_packets_in_flight():
    flight = np.zeros(65536, dtype=np.uint8)
    flight[[1, 2, 3, 65535]] = 1

    def puback(pid: int) -> bytes:
        return bytes((0x40, 2, pid >> 8, pid & 0xFF))

    assert count_acks(puback(1) + puback(65535) + puback(9), flight) == (2, 12, 1)  # 9 was never sent
    assert flight[[1, 65535]].tolist() == [0, 0]
    mixed = puback(2) + b"\xd0\x00" + puback(3)[:3]  # a PINGRESP between, the next PUBACK cut off
    assert count_acks(mixed, flight) == (1, 6, 0)
    assert count_acks(puback(3), flight) == (1, 4, 0) and not flight.any()


@pytest.mark.slow  # 70,000 messages: the packet ids wrap around
def test_raw_publisher_gets_every_message_acknowledged_and_delivered(project_broker, subscriber):
    items = [(f"sim/raw/{k % 7}".encode(), f"payload {k}".encode() * 20) for k in range(70_000)]
    pub = RawPublisher(project_broker.url, "sim-test-raw", window=5000)
    for k in range(0, len(items), 9000):
        pub.publish_many(items[k : k + 9000])
    pub.close()
    assert pub.sent == pub.acked == len(items) and pub.errors == 0  # packet ids wrapped around 65535 safely
    got = subscriber.wait_for(len(items))
    assert collections.Counter(got) == collections.Counter((t.decode(), p) for t, p in items)


def test_publish_all_returns_once_every_message_is_acknowledged_in_order(project_broker, subscriber):
    items = [(f"sim/all/{k % 3}", f"m{k}".encode()) for k in range(3_000)]
    seconds = publish_all(project_broker.url, items, window=100, chunk=250)
    assert seconds > 0
    got = subscriber.wait_for(len(items))
    assert len(got) == len(items)
    for name in ("sim/all/0", "sim/all/1", "sim/all/2"):  # one connection: each topic's messages keep their order
        assert [p for t, p in got if t == name] == [p for t, p in items if t == name]


def test_raw_publisher_reports_refused_and_missing_brokers(project_broker):
    with pytest.raises(OSError):
        RawPublisher("mqtt://127.0.0.1:1")
    with pytest.raises(ValueError):
        RawPublisher(project_broker.url, window=70000)
    assert issubclass(RawMqttError, Exception) and RawMqttError("gone", 3).unacked == 3
