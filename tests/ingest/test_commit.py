"""One commit path on the real database: a batch is prepared once, split only where the database rejects a row, and
its time and size are counted once, whether its write ran in a writer thread or runs again after a failure."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import psycopg
import pytest

from stadtpuls.ingest.commit import Committer, MessageBatch
from stadtpuls.ingest.inbox import Inbox, Message
from stadtpuls.ingest.metrics import Metrics
from stadtpuls.ingest.pipeline import Pipeline, Prepared
from stadtpuls.ingest.registry import load_registry
from stadtpuls.ingest.spool import Spool
from stadtpuls.ingest.worker import Worker, WorkerConfig
from stadtpuls.ingest.writer import Writer

from .conftest import register, scalar

APP = "00000000-0000-0000-0000-0000000000c0"
SPACE = "1000000000000c01"
FLEET = f"""
sites:
  - {{site_id: lot-c, kind: lot, capacity: 1}}
  - {{site_id: space-c, kind: space, parent_id: lot-c}}
devices:
  - {{dev_eui: "{SPACE}", codec: nwave/nps405, site_id: space-c}}
"""
REJECTED_F_CNT = 13


def _message(f_cnt: int) -> Message:
    """A ChirpStack v4 uplink of the parking sensor (occupied on odd frame counters)."""
    doc = {
        "deduplicationId": f"00000000-0000-4000-8000-{f_cnt:012d}",
        "time": f"2026-03-02T07:{f_cnt // 60:02d}:{f_cnt % 60:02d}Z",
        "deviceInfo": {"devEui": SPACE, "applicationId": APP},
        "fCnt": f_cnt,
        "fPort": 1,
        "data": base64.b64encode(bytes([f_cnt % 2])).decode(),
        "rxInfo": [{"gatewayId": "0101010101010101", "rssi": -90, "snr": 7.0}],
    }
    return Message(f"application/{APP}/device/{SPACE}/event/up", orjson.dumps(doc), f_cnt, 1, 0)


class Acks:
    def __init__(self) -> None:
        self.mids: list[int] = []

    def ack(self, messages: Sequence[Message]) -> int:
        self.mids.extend(m.mid for m in messages)
        return len(messages)


@pytest.fixture
def rejecting_db(migrated_database: Callable[[], str]) -> str:
    """A database that rejects the uplink with frame counter 13 (a CHECK constraint)."""
    url = migrated_database()
    register(url, FLEET)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE uplinks ADD CONSTRAINT not_13 CHECK (f_cnt <> {REJECTED_F_CNT})")
    return url


def _sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    return 0.0 if value is None else value


def test_a_batch_written_in_a_thread_that_the_database_rejects_is_prepared_once_then_split(
    rejecting_db: str, tmp_path: Path
) -> None:
    acks, metrics, writer, spool = Acks(), Metrics(), Writer(rejecting_db), Spool(tmp_path, 1 << 20)
    worker = Worker(WorkerConfig(batch_size=100, writers=2), Inbox(100), acks, writer, spool, metrics)
    try:
        assert worker.refresh_registry(force=True)
        assert worker.pipeline is not None
        prepare = worker.pipeline.prepare
        prepared_sizes: list[int] = []

        def counting_prepare(
            topics: Sequence[str], payloads: Sequence[bytes], hub_time: float, sources: Sequence[int] | None = None
        ) -> Prepared:
            prepared_sizes.append(len(topics))
            return prepare(topics, payloads, hub_time, sources)

        worker.pipeline.prepare = counting_prepare  # type: ignore[method-assign]
        messages = [_message(f) for f in range(1, 21)]
        worker.handle(messages)  # written in a writer thread, where the database rejects frame 13
        worker.finish_inflight()
    finally:
        worker.close()
        writer.close()
        spool.close()
    assert sorted(acks.mids) == list(range(1, 21))
    assert prepared_sizes.count(20) == 1  # the whole batch once; after that only its halves, down to frame 13
    assert sorted(prepared_sizes[1:]) == [1, 2, 2, 3, 5, 5, 10, 10]
    assert scalar(rejecting_db, "SELECT count(*) FROM uplinks") == 19
    assert scalar(rejecting_db, "SELECT count(*) FROM parking_events") == 19
    reason = scalar(rejecting_db, "SELECT reason FROM dead_letters WHERE stage = 'database'")
    assert reason.startswith("23514") and "not_13" in reason
    assert _sample(metrics, "stadtpuls_ingest_batch_seconds_count") == 1
    assert _sample(metrics, "stadtpuls_ingest_batch_messages_sum") == 20
    assert _sample(metrics, "stadtpuls_ingest_stored_total") == 19
    assert _sample(metrics, "stadtpuls_ingest_batches_total") == 4  # the stored parts: 10, 5, 2 and 2 messages


def test_a_prepared_batch_is_not_parsed_again_when_committed(rejecting_db: str) -> None:
    metrics, writer = Metrics(), Writer(rejecting_db)
    with psycopg.connect(rejecting_db) as conn:
        committer = Committer(Pipeline(load_registry(conn)), metrics)
    batch = MessageBatch.received([_message(f) for f in (1, 2, 3)])
    committer.prepare(batch)
    prepared = batch.prepared
    assert prepared is not None and len(prepared.envelopes) == 3
    batch.topics, batch.payloads = ["elsewhere"] * 3, [b"not json"] * 3  # a second parse would dead-letter them
    try:
        committer.commit(batch, writer)
    finally:
        writer.close()
    assert batch.prepared is prepared
    assert scalar(rejecting_db, "SELECT count(*) FROM uplinks") == 3
    assert scalar(rejecting_db, "SELECT count(*) FROM dead_letters") == 0
    assert _sample(metrics, "stadtpuls_ingest_batch_seconds_count") == 1


def test_halves_of_a_batch_keep_its_order_messages_and_receive_time() -> None:
    batch = MessageBatch.received([_message(f) for f in range(1, 6)], hub_time=1_700_000_000.0)
    first, second = batch.halves()
    assert [m.mid for m in first.messages] == [1, 2] and [m.mid for m in second.messages] == [3, 4, 5]
    assert first.topics + second.topics == batch.topics and first.payloads + second.payloads == batch.payloads
    assert first.hub_time == batch.hub_time and second.hub_time == batch.hub_time + 4e-6  # after the first's 2
    joined = first.followed_by(second)
    assert [m.mid for m in joined.messages] == [1, 2, 3, 4, 5] and joined.hub_time == batch.hub_time
