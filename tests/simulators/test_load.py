"""Load mode: template-built messages read back like the ordinary ones, frame counters count, faults are counted."""

from __future__ import annotations

import collections

import numpy as np

from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.faults import FaultConfig
from stadtpuls.simulators.load import LoadRun, run
from stadtpuls.simulators.timebase import US, parse_start

START = parse_start("2025-03-03T08:00:00Z")


def _parse(items):
    return parse_batch([t.decode() for t, _ in items], [p for _, p in items], hub_time=0)


def test_load_messages_parse_and_decode_with_consecutive_frame_counters():
    city = build_city("medium", 4)
    load = LoadRun(city, seed=4, start_us=START, rate=10_000)
    items = load.chunk(3000) + load.chunk(3000)
    batch = _parse(items)
    assert len(batch) == 6000 and not batch.rejects and not batch.joins
    times = batch.time.astype("datetime64[us]").astype(np.int64)
    assert (np.diff(times) == 100).all() and times[0] == START  # 10,000 a second
    by_dev = collections.defaultdict(list)
    for i in range(len(batch)):
        by_dev[batch.dev_eui[i].decode()].append(int(batch.f_cnt[i]))
    assert all(np.all(np.diff(f) == 1) for f in by_dev.values())
    codec_of = {d.dev_eui: d.codec for d in city.devices}
    for codec_id in set(codec_of.values()):
        rows = np.flatnonzero([codec_of[e.decode()] == codec_id for e in batch.dev_eui])
        sub = batch.select(rows)
        assert get(codec_id).decode(sub.f_port, sub.buf, sub.offsets).ok.all(), codec_id


def test_load_faults_are_applied_and_counted():
    city = build_city("small", 5)
    load = LoadRun(city, seed=5, start_us=START, rate=0, faults=FaultConfig.parse("default"))
    sent: list[tuple[bytes, bytes]] = []
    report = run(load, sent.extend, count=40_000, rate=0, chunk_size=4000)
    f = report.faults
    assert all(v > 0 for v in f.values())
    assert report.sent == len(sent)
    assert report.uplinks == 40_000 - f["gaps"] + f["unknown"]
    batch = _parse(sent)
    assert len(batch.rejects) == f["malformed"]
    assert len(batch.joins) == report.joins == f["resets"]
    assert len(batch) == report.uplinks + f["duplicates"]
    known = {d.dev_eui for d in city.devices}
    unknown = sum(1 for e in batch.dev_eui if e.decode() not in known)
    assert unknown == f["unknown"]


def test_run_paces_chunks_by_the_rate():
    city = build_city("small", 6)
    load = LoadRun(city, seed=6, start_us=START, rate=50_000)
    chunks: list[int] = []
    report = run(load, lambda items: chunks.append(len(items)), count=10_000, rate=50_000, chunk_size=2500)
    assert chunks == [2500] * 4 and report.sent == 10_000
    assert report.seconds >= 3 * 2500 / 50_000 * 0.9  # the fourth chunk was due 150 ms after the first
    assert load.index * load.step_us == 10_000 * US / 50_000
