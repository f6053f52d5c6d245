"""Simulator load mode: messages per second from one process into the local broker, against a naive publisher.

A Mosquitto with the project's config is started on a free port (:class:`stadtpuls.demo.embedded.EmbeddedBroker`).
Load mode (``stadtpuls simulate --rate 0``) sends N uplinks of the medium town: payloads encoded per device model in
one call, envelopes filled from per-device templates, pre-built QoS 1 PUBLISH packets written in chunks, every
PUBACK awaited. The baseline is the straightforward loop: per message a random reading, the codec's ``encode()`` for
that one reading, the envelope as a dict, ``json.dumps`` and paho-mqtt ``publish(qos=1)``, all PUBACKs awaited at
the end. Each figure is the median of several runs; the ratio compares the medians.

    python -m bench.simulate [--n 300000] [--baseline-n 30000] [--runs 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from stadtpuls.demo.embedded import EmbeddedBroker
from stadtpuls.ingest.codecs import get
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.faults import FaultConfig
from stadtpuls.simulators.load import LoadRun, run
from stadtpuls.simulators.loadgen import random_fields
from stadtpuls.simulators.mqtt_raw import RawPublisher
from stadtpuls.simulators.sessions import Sessions
from stadtpuls.simulators.uplinks import Network, UplinkFacts, chirpstack_uplink, stamps, topic, tts_uplink

from ._report import Report

START_US = 1_740_988_800_000_000  # 2025-03-03 08:00 UTC
TARGET = 30_000


def load_mode(url: str, n: int, faults: str, seed: int) -> tuple[float, float]:
    """(messages/s, publisher CPU microseconds per message)."""
    city = build_city("medium", seed)
    load = LoadRun(city, seed=seed, start_us=START_US, rate=0, faults=FaultConfig.parse(faults))
    pub = RawPublisher(url, f"bench-load-{seed}")
    t0, c0 = time.perf_counter(), time.process_time()
    report = run(load, pub.publish_many, count=n, rate=0)
    pub.close()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert pub.acked == report.sent
    return report.sent / seconds, cpu / report.sent * 1e6


def naive(url: str, n: int, seed: int) -> float:
    import paho.mqtt.client as mqtt

    city = build_city("medium", seed)
    net = Network()
    sessions = Sessions(city, seed, START_US)
    rng = np.random.default_rng(seed)
    for d in city.devices:
        sessions.join(d.index, START_US - 60_000_000)
    acked = 0
    done = threading.Event()

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    port = int(url.rsplit(":", 1)[1])
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-naive-{seed}", protocol=mqtt.MQTTv311)
    client.on_publish = on_publish
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    gw = city.gateways[0]
    t0 = time.perf_counter()
    for k in range(n):
        d = city.devices[k % len(city.devices)]
        f_port, fields = random_fields(d.model.key, 1, rng)
        buf, offsets = get(d.codec).encode(f_port, fields)
        t = START_US + k * 100
        s = sessions.current[d.index]
        facts = UplinkFacts(
            d,
            s,
            sessions.next_f_cnt(d.index),
            f_port,
            buf.tobytes(),
            t,
            7,
            868_100_000,
            1,
            61_696,
            [(gw, -100.0, 5.0)],
            str(rng.integers(1 << 62)),
            ["0" * 26] * 5,
            [base64.b64encode(rng.bytes(4)).decode()],
            [int(rng.integers(1 << 31))],
            stamps(t, 0, d.lns),
        )
        body = tts_uplink(net, facts) if d.lns == "tts" else chirpstack_uplink(net, facts)
        client.publish(topic(net, d), json.dumps(body), qos=1)
    done.wait(120)
    seconds = time.perf_counter() - t0
    client.disconnect()
    client.loop_stop()
    assert acked == n
    return n / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300_000, help="uplinks per load-mode run")
    ap.add_argument("--baseline-n", type=int, default=30_000, help="messages per baseline run")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(Path(tmp) / "broker")
        url = broker.start()
        try:
            print(f"broker: {broker.kind} on {url}; medium town, {args.runs} runs each, medians")
            fast, faulty, slow, cpu = [], [], [], []
            for r in range(args.runs):
                rate, us = load_mode(url, args.n, "none", r + 1)
                fast.append(rate)
                cpu.append(us)
                faulty.append(load_mode(url, args.n, "default", r + 1)[0])
                slow.append(naive(url, args.baseline_n, r + 1))
        finally:
            broker.stop()
    m_fast, m_faulty, m_slow = (statistics.median(x) for x in (fast, faulty, slow))
    print(f"load mode:                  {m_fast:10,.0f} messages/s  (runs: {', '.join(f'{x:,.0f}' for x in fast)})")
    print(f"load mode, default faults:  {m_faulty:10,.0f} messages/s  (runs: {', '.join(f'{x:,.0f}' for x in faulty)})")
    print(f"naive per-message baseline: {m_slow:10,.0f} messages/s  (runs: {', '.join(f'{x:,.0f}' for x in slow)})")
    print(f"ratio load mode / baseline: {m_fast / m_slow:.1f}x  (with faults: {m_faulty / m_slow:.1f}x)")
    print(f"load mode publisher CPU:    {statistics.median(cpu):10.1f} us/message (the broker runs beside it)")
    report = Report("simulate")
    report.figure("load mode", m_fast, "messages/s")
    report.figure("ratio", m_fast / m_slow, "x naive")
    report.target(f">= {TARGET:,} messages/s from one process", m_fast >= TARGET)
    report.write()


if __name__ == "__main__":
    main()
