"""Fuzzing the whole ingest batch path: the worker parses, resolves devices in the registry, decodes with every
codec, maps to domain rows and writes into the real database, for batches of generated messages good and bad.

After every batch: nothing raised, every message was acknowledged, nothing was spooled or held, no dead letter
says "internal" or "database" (a defect or a row the database refused), every dead letter has a reason and
carries one of the batch's messages, and the messages add up:
``readings stored + duplicates + envelope/size/source dead letters + ignored + events == sent`` (unknown-device and
codec rejects are stored as raw uplinks and dead-lettered, so they count among the uplinks; a message whose topic and
body name different devices or applications, as a replaced field can make them, is a source dead letter). Messages
whose outcome is known by construction (a valid uplink, an unknown device, bad base64, an oversized message) must
have it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stadtpuls.ingest.inbox import Inbox, Message
from stadtpuls.ingest.metrics import Metrics
from stadtpuls.ingest.spool import Spool
from stadtpuls.ingest.worker import Worker, WorkerConfig
from stadtpuls.ingest.writer import Writer

from . import fuzzkit as fk
from .conftest import ingest_helpers, write_artifact

SCALE = float(os.environ.get("STADTPULS_RELIABILITY_SCALE", "1"))

# A reliability suite: `make test` runs it, `make test-fast` does not. Its examples scale with SCALE, so does its time.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 * max(1.0, SCALE))]
LIMIT = 32_768  # max_message_bytes of the fuzzed worker
COUNTS: Counter[str] = Counter()


class Acks:
    """Counts acknowledgements (the worker's view of the MQTT side)."""

    def __init__(self) -> None:
        self.n = 0

    def ack(self, messages: Any) -> int:
        self.n += len(messages)
        return len(messages)


@dataclass
class Rig:
    url: str
    worker: Worker
    acks: Acks
    metrics: Metrics


def _total(counter: Any) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


@pytest.fixture(scope="module")
def rig(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE uplinks, bin_levels, parking_events, passenger_counts, environment_readings,"
            " dead_letters, fcnt_gaps, device_state, devices, sites, api_keys RESTART IDENTITY CASCADE"
        )
    ingest_helpers.register(db_url, fk.fleet_yaml())
    metrics, acks = Metrics(), Acks()
    writer = Writer(db_url)
    spool = Spool(Path(tmp_path_factory.mktemp("spool")), 1 << 26)
    worker = Worker(WorkerConfig(batch_size=100, max_message_bytes=LIMIT), Inbox(1000), acks, writer, spool, metrics)
    assert worker.refresh_registry(force=True)
    yield Rig(db_url, worker, acks, metrics)
    worker.close()
    writer.close()
    spool.close()
    write_artifact("fuzz", "batch_path", dict(sorted(COUNTS.items())))
    print(f"\nbatch-path fuzz cases: {dict(sorted(COUNTS.items()))}, total {sum(COUNTS.values())}")


def _state(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM uplinks), (SELECT coalesce(max(id), 0) FROM dead_letters),"
            " (SELECT count(*) FROM bin_levels) + (SELECT count(*) FROM parking_events)"
            " + (SELECT count(*) FROM passenger_counts) + (SELECT count(*) FROM environment_readings)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _dead_letter_repeats(url: str) -> dict[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute("SELECT id, repeats FROM dead_letters").fetchall())


def run_batch(rig: Rig, cases: list[fk.Case], target: str) -> dict[str, Any]:
    """Send one batch through the worker and check the invariants (module docstring); returns the figures."""
    m = rig.metrics
    uplinks0, _, domain0 = _state(rig.url)
    repeats0 = _dead_letter_repeats(rig.url)
    before = {name: _total(getattr(m, name)) for name in ("duplicates", "ignored", "events", "stored")}
    acks0 = rig.acks.n
    items = [Message(c.topic, c.payload, i + 1, 1, 0) for i, c in enumerate(cases)]
    rig.worker.handle(items)  # must not raise
    rig.worker.finish_inflight()  # the batch is written in the writer thread: wait for its commit and acks
    COUNTS[target] += len(cases)
    assert rig.acks.n - acks0 == len(cases)
    assert not rig.worker.spool.pending and rig.worker._held is None and not rig.worker.db_down
    uplinks1, _, domain1 = _state(rig.url)
    # the batch's dead letters: new rows, and rows of messages dead-lettered before whose repeats went up
    with psycopg.connect(rig.url, autocommit=True) as conn:
        rows = conn.execute("SELECT id, stage, reason, payload, repeats FROM dead_letters").fetchall()
    dead = [(stage, reason, payload) for i, stage, reason, payload, n in rows if n != repeats0.get(i, 0)]
    delta = {name: _total(getattr(m, name)) - v for name, v in before.items()}
    stages: Counter[str] = Counter()
    for i, stage, _, _, n in rows:
        if n != repeats0.get(i, 0):
            stages[stage] += n - repeats0.get(i, 0)
    assert not {"internal", "database"} & set(stages), [d[:2] for d in dead if d[0] in ("internal", "database")]
    assert all(reason.strip() for _, reason, _ in dead)
    sent = Counter(c.payload for c in cases)
    assert all(sent[bytes(p)] for _, _, p in dead), "a dead letter that is none of the batch's messages"
    new_uplinks = uplinks1 - uplinks0
    assert new_uplinks == delta["stored"]
    accounted = (
        new_uplinks
        + delta["duplicates"]
        + stages["envelope"]
        + stages["size"]
        + stages["source"]
        + delta["ignored"]
        + delta["events"]
    )
    assert accounted == len(cases), (accounted, len(cases), stages, delta)
    by_payload = Counter((stage, bytes(p)) for stage, _, p in dead)
    dead_payloads = {bytes(p) for _, _, p in dead}
    for c in cases:
        if c.expect == "reading":
            assert c.payload not in dead_payloads, c.kind
        elif c.expect is not None:
            assert by_payload[(c.expect, c.payload)] >= 1, (c.kind, c.expect, c.payload[:200])
    readings = sum(1 for c in cases if c.expect == "reading")
    assert new_uplinks >= readings
    return {"uplinks": new_uplinks, "domain": domain1 - domain0, "dead": stages}


def fuzz(examples: int) -> settings:
    # no shrinking: the database keeps what earlier examples wrote, so a shrunk replay is not the same run
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )


@fuzz(150)
@given(st.lists(fk.mixed(LIMIT), min_size=1, max_size=25))
def test_mixed_batches_of_good_and_bad_messages_are_fully_accounted_for(rig: Rig, cases: list[fk.Case]) -> None:
    run_batch(rig, cases, "mixed batches")
    for c in cases:
        COUNTS["kind: " + c.kind] += 1


@pytest.mark.parametrize("codec", fk.CODECS)
def test_every_codec_through_the_batch_path(rig: Rig, codec: str) -> None:
    """Valid vectors, arbitrary bytes, cut and extended payloads and foreign fPorts for one codec's devices:
    every message is a stored raw uplink; valid ones give domain rows, rejected ones a codec dead letter."""

    @fuzz(25)
    @given(st.lists(fk.valid(codec) | fk.odd_payload(codec), min_size=1, max_size=20))
    def run(cases: list[fk.Case]) -> None:
        figures = run_batch(rig, cases, f"codec {codec}")
        assert figures["uplinks"] == len(cases)
        assert set(figures["dead"]) <= {"codec"}

    run()


def test_valid_vectors_of_every_codec_give_domain_rows(rig: Rig) -> None:
    cases = []
    for d in fk.DEVICES:
        for port, raw in fk.VECTORS[d.codec]:
            topic, doc = fk.envelope(d, port, raw)
            cases.append(fk.Case("valid", topic, fk.dumps(doc), "reading"))
    figures = run_batch(rig, cases, "vectors")
    assert figures["uplinks"] == len(cases) and not figures["dead"]
    assert figures["domain"] >= len(fk.DEVICES)  # every device got at least one domain row
    assert {c for c in fk.CODECS if fk.VECTORS.get(c)} == set(fk.CODECS)


def test_batch_and_message_size_limits_come_from_the_settings(
    db_url: str, rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stadtpuls.ingest.service import IngestService
    from stadtpuls.settings import load

    monkeypatch.setenv("STADTPULS_BATCH_SIZE", "7")
    monkeypatch.setenv("STADTPULS_MAX_MESSAGE_BYTES", "2000")
    monkeypatch.setenv("STADTPULS_METRICS_PORT", "0")
    monkeypatch.setenv("STADTPULS_SPOOL_DIR", str(tmp_path / "spool"))
    settings_ = load(database_url=db_url, mqtt_url="mqtt://127.0.0.1:1")
    service = IngestService(settings_, database_url=db_url, mqtt_url="mqtt://127.0.0.1:1")
    try:
        w = service.worker
        assert w.config.batch_size == 7 and w.config.max_message_bytes == 2000
        assert w.refresh_registry(force=True)
        d = fk.DEVICES[0]
        good = [fk.envelope(d, *fk.VECTORS[d.codec][0]) for _ in range(49)]
        big_topic, big = fk.envelope(d, *fk.VECTORS[d.codec][0])
        big["padding"] = "x" * 2500
        msgs = [Message(t, fk.dumps(doc), i + 1, 1, 0) for i, (t, doc) in enumerate(good)]
        msgs.append(Message(big_topic, fk.dumps(big), 99, 1, 0))
        assert all(len(m.payload) <= 2000 for m in msgs[:-1]) and len(msgs[-1].payload) > 2000
        uplinks0, dead0, _ = _state(db_url)
        service.inbox.put_many(msgs)
        import threading

        stop = threading.Event()
        stop.set()  # drain what is there, then return
        w.run(stop)  # returns once the inbox is drained, after the last commit
        assert _total(service.metrics.batches) == 8  # 50 messages in batches of at most 7
        uplinks1, _, _ = _state(db_url)
        assert uplinks1 - uplinks0 == 49
        with psycopg.connect(db_url) as conn:
            dead = conn.execute("SELECT stage, reason FROM dead_letters WHERE id > %s", (dead0,)).fetchall()
        assert len(dead) == 1 and dead[0][0] == "size" and "2000" in dead[0][1], dead
    finally:
        service.writer.close()
        service.spool.close()
    COUNTS["size limits"] += 50
