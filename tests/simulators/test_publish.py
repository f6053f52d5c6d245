"""Publishing: every simulated message reaches a real broker at QoS 1; files round-trip; pacing follows --speed."""

from __future__ import annotations

import collections
import socket

import pytest

from stadtpuls.simulators import FileSink, Message, MqttSink, read_messages
from stadtpuls.simulators.publish import PublishError, pace
from stadtpuls.simulators.timebase import US


def test_mqtt_sink_delivers_every_message_of_a_simulated_day(project_broker, subscriber, small_week):
    day = [m for m in small_week.messages if m.t_us < small_week.messages[0].t_us + 86400 * US]
    sink = MqttSink(project_broker.url, client_id="sim-test-sink")
    for m in day:
        sink.send(m)
    sink.close()
    assert sink.acked == sink.sent == len(day)
    got = subscriber.wait_for(len(day))
    assert collections.Counter(got) == collections.Counter((m.topic, m.payload) for m in day)


def test_mqtt_sink_reports_a_broker_that_is_not_there_or_does_not_answer():
    with pytest.raises(PublishError):
        MqttSink("mqtt://127.0.0.1:1", client_id="sim-test-nobody")
    with socket.socket() as silent:  # accepts the connection, never sends CONNACK
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(PublishError, match="no answer"):
            MqttSink(f"mqtt://127.0.0.1:{port}", client_id="sim-test-silent", connect_timeout=0.5)


def test_message_files_round_trip_byte_for_byte(tmp_path, small_week):
    sink = FileSink(tmp_path / "m.jsonl")
    for m in small_week.messages[:3000]:
        sink.send(m)
    sink.close()
    back = list(read_messages(tmp_path / "m.jsonl"))
    assert back == small_week.messages[:3000]


def test_pace_spreads_messages_by_simulated_time_divided_by_speed():
    slept: list[float] = []
    msgs = [Message(k * 3600 * US, "t", b"") for k in range(4)]
    out = list(pace(msgs, 3600.0, 0, sleep=slept.append))
    assert out == msgs
    # the fake sleep does not move the clock: each message waits for its own offset of k hours / 3600
    assert slept == pytest.approx([1.0, 2.0, 3.0], abs=0.2)
    assert list(pace(msgs, 0.0, 0, sleep=slept.append)) == msgs and len(slept) == 3
