"""The batch worker against the real database: bad rows isolated, outages spooled and replayed, back-pressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import psycopg
import pytest

from stadtpuls.demo.embedded import free_port
from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.ingest.inbox import Inbox, Message
from stadtpuls.ingest.metrics import Metrics
from stadtpuls.ingest.spool import Spool
from stadtpuls.ingest.worker import Worker, WorkerConfig
from stadtpuls.ingest.writer import Writer
from stadtpuls.simulators.loadgen import make_fleet, make_uplinks

from .conftest import register, scalar, wait_for


class RecordingAcker:
    """Stands in for the MQTT side: records which messages were acknowledged."""

    def __init__(self) -> None:
        self.acked: list[Message] = []

    def ack(self, messages: Sequence[Message]) -> int:
        self.acked.extend(messages)
        return len(messages)


@pytest.fixture
def fresh_db(migrated_database: Callable[[], str]) -> str:
    return migrated_database()


Made = tuple[Worker, Inbox, RecordingAcker]


@pytest.fixture
def make_worker(tmp_path: Path) -> Iterator[Callable[..., Made]]:
    """Workers on a fresh inbox and spool; their database connections and spool files are closed afterwards."""
    made: list[Worker] = []

    def make(url: str, spool_bytes: int = 1 << 24) -> Made:
        inbox = Inbox(100_000)
        acker = RecordingAcker()
        worker = Worker(
            WorkerConfig(batch_size=500, flush_interval=0.05, registry_refresh=0.5),
            inbox,
            acker,
            Writer(url),
            Spool(tmp_path / f"spool-{len(made)}", spool_bytes),
            Metrics(),
        )
        made.append(worker)
        return worker, inbox, acker

    yield make
    for worker in made:
        worker.close()
        worker.writer.close()
        worker.spool.close()


def _messages(stream: list[tuple[str, bytes]]) -> list[Message]:
    return [Message(t, p, i + 1, 1, 0) for i, (t, p) in enumerate(stream)]


def _cut_database(worker: Worker) -> str:
    """Point the worker at a port where nothing listens; returns the real URL."""
    real = worker.writer.url
    for writer in worker._writers:
        writer.close()
        writer.url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    if worker._side is not None:
        worker._side.close()
        worker._side = None
    return real


def _restore_database(worker: Worker, url: str) -> None:
    for writer in worker._writers:
        writer.url = url


def _run(worker: Worker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


LIMIT_MM = 1380


def test_a_row_the_database_rejects_is_dead_lettered_and_the_rest_stored(
    fresh_db: str, make_worker: Callable[..., Made]
) -> None:
    fleet = make_fleet(4)
    register(fresh_db, fleet.yaml())
    stream = make_uplinks(fleet, 2_000)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        # the farthest few distances (eight of the 500 bin readings): each costs the batch a split down to it
        conn.execute(f"ALTER TABLE bin_levels ADD CONSTRAINT plausible CHECK (distance_mm < {LIMIT_MM})")
    env = parse_batch([t for t, _ in stream], [p for _, p in stream], time.time())
    bins = np.flatnonzero(env.dev_eui == fleet.devices[0].dev_eui.encode())
    em310 = get("milesight-iot/em310-udl")
    decoded = em310.decode(env.f_port[bins].astype(np.int64), *_sub(env.buf, env.offsets, bins))
    rejected = int((decoded.columns["distance"].values >= LIMIT_MM).sum())
    assert 0 < rejected < len(bins)

    worker, inbox, acker = make_worker(fresh_db)
    stop, thread = _run(worker)
    inbox.put_many(_messages(stream))
    wait_for(lambda: len(acker.acked) == len(stream), timeout=60)
    stop.set()
    thread.join(10)
    assert scalar(fresh_db, "SELECT count(*) FROM uplinks") == len(stream) - rejected
    assert scalar(fresh_db, "SELECT count(*) FROM bin_levels") == len(bins) - rejected
    assert scalar(fresh_db, "SELECT count(*) FROM dead_letters WHERE stage = 'database'") == rejected
    reason = scalar(fresh_db, "SELECT min(reason) FROM dead_letters")
    assert "plausible" in reason and reason.startswith("23514")


def _sub(buf: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    parts = [buf[offsets[i] : offsets[i + 1]] for i in rows.tolist()]
    new_offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=new_offsets[1:])
    return np.concatenate(parts), new_offsets


def test_unreachable_database_spools_acknowledges_and_replays_in_order(
    fresh_db: str, make_worker: Callable[..., Made]
) -> None:
    fleet = make_fleet(8)
    register(fresh_db, fleet.yaml())
    stream = make_uplinks(fleet, 1_500)
    worker, inbox, acker = make_worker(fresh_db)
    worker.refresh_registry(force=True)
    real_url = _cut_database(worker)
    stop, thread = _run(worker)
    inbox.put_many(_messages(stream[:1_000]))
    wait_for(lambda: len(acker.acked) == 1_000, timeout=30)  # acknowledged once spooled
    assert worker.spool.messages == 1_000 and worker.db_down
    assert scalar(fresh_db, "SELECT count(*) FROM uplinks") == 0
    _restore_database(worker, real_url)
    inbox.put_many(_messages(stream[1_000:]))
    wait_for(lambda: scalar(fresh_db, "SELECT count(*) FROM uplinks") == 1_500, timeout=60)
    wait_for(lambda: not worker.spool.pending, timeout=30)
    stop.set()
    thread.join(10)
    assert len(acker.acked) == 1_500
    assert worker.metrics.replayed._value.get() >= 1_000
    assert scalar(fresh_db, "SELECT count(*) FROM fcnt_gaps") == 0  # replayed in order: no false gaps


def test_with_the_spool_full_messages_stay_unacknowledged_until_the_database_returns(
    fresh_db: str, make_worker: Callable[..., Made]
) -> None:
    fleet = make_fleet(8)
    register(fresh_db, fleet.yaml())
    stream = make_uplinks(fleet, 600)
    worker, inbox, acker = make_worker(fresh_db, spool_bytes=200_000)
    worker.refresh_registry(force=True)
    real_url = _cut_database(worker)
    stop, thread = _run(worker)
    inbox.put_many(_messages(stream))
    wait_for(lambda: worker._held is not None, timeout=30)
    held = len(stream) - len(acker.acked)
    assert held > 0 and worker.spool.size <= 200_000
    _restore_database(worker, real_url)
    wait_for(lambda: len(acker.acked) == len(stream), timeout=60)
    stop.set()
    thread.join(10)
    assert scalar(fresh_db, "SELECT count(*) FROM uplinks") == len(stream)
    assert not worker.spool.pending
