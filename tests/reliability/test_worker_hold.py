"""Found by the "spool full" drill: when the database goes away with two batches in flight and the spool cannot
take them, both must be held (unacknowledged) and written once the database is back. Holding only the last one
left the first unacknowledged and unwritten until the next reconnection to the broker."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from stadtpuls.ingest.inbox import Inbox, Message
from stadtpuls.ingest.metrics import Metrics
from stadtpuls.ingest.spool import Spool
from stadtpuls.ingest.worker import Worker, WorkerConfig
from stadtpuls.ingest.writer import Writer

from . import fuzzkit as fk
from .conftest import ingest_helpers, tcp_proxy


class Acks:
    def __init__(self) -> None:
        self.mids: list[int] = []

    def ack(self, messages: list[Message]) -> int:
        self.mids.extend(m.mid for m in messages)
        return len(messages)


def _batch(first_mid: int, n: int) -> list[Message]:
    out = []
    for k in range(n):
        d = fk.DEVICES[k % len(fk.DEVICES)]
        topic, doc = fk.envelope(d, *fk.VECTORS[d.codec][0])
        out.append(Message(topic, fk.dumps(doc), first_mid + k, 1, 0))
    return out


def test_batches_in_flight_when_the_database_and_the_spool_fail_are_all_held_then_written(
    clean_db: str, tmp_path: Path
) -> None:
    parts = urlsplit(clean_db)
    if parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        pytest.skip("the outage is made with a TCP proxy to a PostgreSQL on loopback")
    ingest_helpers.register(clean_db, fk.fleet_yaml())
    proxy = tcp_proxy.TcpProxy("127.0.0.1", parts.port)
    url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    acks = Acks()
    # a spool that takes nothing: every batch that cannot be written is held
    spool, writer = Spool(tmp_path, 1), Writer(url)
    worker = Worker(WorkerConfig(batch_size=10, writers=2), Inbox(100), acks, writer, spool, Metrics())
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    try:
        assert worker.refresh_registry(force=True)
        proxy.cut()
        first, second = _batch(1, 10), _batch(100, 10)
        worker.handle(first)  # both go to the writer threads, both fail there
        worker.handle(second)
        worker.finish_inflight()
        assert acks.mids == [] and worker._held is not None
        assert [m.mid for m in worker._held.messages] == [m.mid for m in first + second]  # both held, in order
        proxy.restore()
        runner.start()
        ingest_helpers.wait_for(lambda: len(acks.mids) == 20, timeout=60)
        assert sorted(acks.mids) == sorted(m.mid for m in first + second)
        assert ingest_helpers.scalar(clean_db, "SELECT count(*) FROM uplinks") == 20
    finally:
        stop.set()
        if runner.is_alive():
            runner.join(30)
        else:
            worker.close()
        writer.close()
        spool.close()
        proxy.close()
