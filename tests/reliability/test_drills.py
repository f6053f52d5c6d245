"""Fault drills, each driven by the simulator with its ground truth and ending with an exact count (see
:mod:`drillkit`): stored = delivered, readings = truth, duplicates = 0, lost = 0, every injected bad message
dead-lettered. Figures go to ``artifacts/reliability.json`` (section ``drills``); docs/reliability.md has the
table of a real run. Each drill is bounded by its waits' timeouts."""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from . import drillkit as dk
from .conftest import tcp_proxy

# Each drill runs a minute or so of traffic and faults; its waits bound it well within seven minutes.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture
def rig(clean_db: str, tmp_path: Path) -> Iterator[dk.Rig]:
    if dk.MOSQUITTO is None:
        pytest.skip("the drills need the mosquitto broker (Debian package mosquitto)")
    broker_dir = tmp_path / "broker"
    broker_dir.mkdir()
    r = dk.Rig(clean_db, dk.DrillBroker(broker_dir), tmp_path)
    try:
        yield r
    finally:
        r.close()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def _loopback_port(url: str) -> int:
    parts = urlsplit(url)
    if not parts.port or parts.hostname not in ("127.0.0.1", "localhost"):
        pytest.skip("the outage is made with a TCP proxy to a PostgreSQL on loopback")
    return parts.port


class Publisher(threading.Thread):
    """Publishes a stream in the background; ``error`` holds what stopped it."""

    def __init__(self, url: str, items: list[tuple[bytes, bytes]], rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.items, self.rate = url, items, rate
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        try:
            self.seconds = dk.publish(self.url, self.items, rate=self.rate)
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def finish(self, timeout: float = 120) -> None:
        self.join(timeout)
        assert not self.is_alive(), "publisher did not finish"
        assert self.error is None, self.error


def test_kill_9_of_ingest_mid_batch(rig: dk.Rig) -> None:
    stream = dk.simulate("medium", seed=11, hours=12)
    dk.register(rig.db_url, stream.city)
    t0 = time.monotonic()
    ingest = rig.ingest("drill-kill")
    pub = Publisher(rig.broker.url, stream.items, rate=3000)
    pub.start()
    dk.wait_until(lambda: dk.uplinks(rig.db_url) >= len(stream.items) // 3, 60, "a third stored")
    ingest.kill()  # SIGKILL while batches are being prepared and written
    killed_at = dk.uplinks(rig.db_url)
    time.sleep(1.0)
    rig.ingest("drill-kill")  # same client id: the persistent session and the spool are taken over
    pub.finish()
    dk.wait_stored(rig.db_url, stream, 120)
    figures = dk.count(rig.db_url, stream)
    dk.record(
        "kill -9 of ingest mid-batch",
        figures,
        time.monotonic() - t0,
        f"killed with {killed_at} uplinks stored; restarted 1 s later with the same client id",
        stored_at_kill=killed_at,
    )
    assert killed_at < figures["expected"]
    dk.assert_exact(figures)


def test_postgresql_stopped_and_restarted(rig: dk.Rig) -> None:
    port = _loopback_port(rig.db_url)
    stream = dk.simulate("medium", seed=12, hours=12)
    dk.register(rig.db_url, stream.city)
    proxy = tcp_proxy.TcpProxy("127.0.0.1", port)
    t0 = time.monotonic()
    try:
        ingest = rig.ingest("drill-pg", db_url=_via(rig.db_url, proxy.port))
        pub = Publisher(rig.broker.url, stream.items, rate=1000)
        pub.start()
        dk.wait_until(lambda: dk.uplinks(rig.db_url) >= 2000, 60, "first uplinks stored")
        proxy.cut()  # connections dropped, new ones refused: the server is gone for the hub
        ingest.wait_log("database unreachable", timeout=20)
        time.sleep(15)
        during = dk.uplinks(rig.db_url)
        proxy.restore()
        ingest.wait_log("spool replayed and emptied", timeout=60)
        pub.finish()
        dk.wait_stored(rig.db_url, stream, 120)
    finally:
        proxy.close()
    figures = dk.count(rig.db_url, stream)
    dk.record(
        "PostgreSQL stopped and restarted",
        figures,
        time.monotonic() - t0,
        f"15 s outage (TCP proxy cut) while publishing at 1000/s; {during} uplinks stored before it; "
        "spooled to disk, replayed after",
        stored_before_outage=during,
    )
    assert during < figures["expected"]
    dk.assert_exact(figures)


def test_postgresql_slowed_by_a_table_lock_and_the_spool_full(rig: dk.Rig) -> None:
    port = _loopback_port(rig.db_url)
    stream = dk.simulate("medium", seed=13, hours=12)
    dk.register(rig.db_url, stream.city)
    proxy = tcp_proxy.TcpProxy("127.0.0.1", port)
    lock_s = 60
    t0 = time.monotonic()
    try:
        ingest = rig.ingest(
            "drill-slow",
            db_url=_via(rig.db_url, proxy.port),
            STADTPULS_QUEUE_MAX="500",
            STADTPULS_SPOOL_MAX_BYTES=str(1 << 20),
        )
        half = len(stream.items) // 2
        pub = Publisher(rig.broker.url, stream.items[:half], rate=1000)
        pub.start()
        dk.wait_until(lambda: dk.uplinks(rig.db_url) >= 1000, 60, "first uplinks stored")
        # phase 1: a target table locked: writes wait, the inbox fills, the MQTT thread stops reading
        with psycopg.connect(rig.db_url) as locker:
            locker.execute("LOCK TABLE uplinks IN ACCESS EXCLUSIVE MODE")
            locked_at = time.monotonic()
            time.sleep(lock_s)
            locker.rollback()
        stored_after_lock = dk.uplinks(rig.db_url)
        pub.finish()
        # phase 2: the database unreachable with a 1 MiB spool: the spool fills, then messages stay with the broker
        proxy.cut()
        pub = Publisher(rig.broker.url, stream.items[half:], rate=2000)
        pub.start()
        ingest.wait_log("spool full: holding messages unacknowledged", timeout=60)
        time.sleep(3)
        proxy.restore()
        pub.finish()
        dk.wait_stored(rig.db_url, stream, 180)
    finally:
        proxy.close()
    figures = dk.count(rig.db_url, stream)
    assert time.monotonic() - locked_at >= lock_s
    dk.record(
        "PostgreSQL slowed (table locked) and spool full",
        figures,
        time.monotonic() - t0,
        f"uplinks locked (ACCESS EXCLUSIVE) for {lock_s} s with a 500-message inbox, then the database cut "
        "with a 1 MiB spool until the spool was full; held unacknowledged, the broker kept the rest",
        lock_seconds=lock_s,
        stored_after_lock=stored_after_lock,
    )
    dk.assert_exact(figures)


def test_broker_restarted_and_the_persistent_session_resumes(rig: dk.Rig) -> None:
    """Two restarts of the broker: one while the ingest is connected and working through a backlog (messages in
    flight and queued), one while the ingest is offline and a third of the stream waits in its session, so that
    the queued messages must survive the restart in Mosquitto's persistence file."""
    stream = dk.simulate("medium", seed=14, hours=12)
    dk.register(rig.db_url, stream.city)
    t0 = time.monotonic()
    ingest = rig.ingest("drill-broker")
    third = len(stream.items) // 3
    pub = Publisher(rig.broker.url, stream.items[:third], rate=0)  # as fast as possible: a backlog builds up
    pub.start()
    dk.wait_until(lambda: dk.uplinks(rig.db_url) >= 500, 60, "first uplinks stored", 0.02)
    pub.finish()
    rig.broker.stop()  # 1: SIGTERM with messages queued for, and in flight to, the connected ingest
    stored_at_stop = dk.uplinks(rig.db_url)
    ingest.wait_log("MQTT disconnected", timeout=10)
    ingest.stop()  # gracefully: what it received is committed, the session stays on the broker
    rig.broker.start()
    dk.publish(rig.broker.url, stream.items[third : 2 * third])  # queued for the offline session
    offline = dk.uplinks(rig.db_url)
    rig.broker.stop()  # 2: the queued third must be written to the persistence file ...
    rig.broker.start()  # ... and read back
    resumed = rig.ingest("drill-broker")
    assert "session_present=True" in resumed.log()
    dk.publish(rig.broker.url, stream.items[2 * third :])
    dk.wait_stored(rig.db_url, stream, 120)
    figures = dk.count(rig.db_url, stream)
    dk.record(
        "broker restarted",
        figures,
        time.monotonic() - t0,
        f"Mosquitto (persistence on) stopped while the ingest worked through a backlog ({third - stored_at_stop}"
        f" of {third} messages not yet stored), then again with {third} messages waiting in the offline "
        "ingest's session; the QoS 1 persistent session resumed",
        stored_at_broker_stop=stored_at_stop,
        stored_while_offline=offline,
    )
    assert offline <= third < figures["expected"]  # the second third was in the broker's file only
    dk.assert_exact(figures)


def test_two_workers_on_a_shared_subscription_with_one_killed(rig: dk.Rig) -> None:
    stream = dk.simulate("medium", seed=15, hours=12)
    dk.register(rig.db_url, stream.city)
    t0 = time.monotonic()
    group = {"STADTPULS_MQTT_SHARE_GROUP": "drill"}
    rig.ingest("drill-w1", STADTPULS_SPOOL_DIR=str(rig.tmp / "spool-w1"), **group)
    w2 = rig.ingest("drill-w2", STADTPULS_SPOOL_DIR=str(rig.tmp / "spool-w2"), **group)
    pub = Publisher(rig.broker.url, stream.items, rate=2000)
    pub.start()
    dk.wait_until(lambda: dk.uplinks(rig.db_url) >= len(stream.items) // 3, 60, "a third stored")
    w2.kill()
    killed_at = dk.uplinks(rig.db_url)
    time.sleep(3.0)
    alone = dk.uplinks(rig.db_url)
    rig.ingest("drill-w2", STADTPULS_SPOOL_DIR=str(rig.tmp / "spool-w2"), **group)  # restarted by its supervisor
    pub.finish()
    dk.wait_stored(rig.db_url, stream, 120)
    figures = dk.count(rig.db_url, stream)
    dk.record(
        "two workers on a shared subscription, one killed",
        figures,
        time.monotonic() - t0,
        f"worker 2 killed (SIGKILL) at {killed_at} uplinks stored; worker 1 went on alone "
        f"({alone - killed_at} stored in 3 s); worker 2 restarted with its client id took back its session",
        stored_at_kill=killed_at,
    )
    assert alone > killed_at  # the surviving worker kept storing
    dk.assert_exact(figures)


NORMAL_RATE = 30  # uplinks/s of a city of about 100,000 sensors reporting hourly
FLOOD_FACTOR = 100
FLOOD_SECONDS = float(os.environ.get("STADTPULS_FLOOD_SECONDS", "60"))


@pytest.mark.timeout(FLOOD_SECONDS + 360)
def test_flood_of_100_times_the_normal_rate(rig: dk.Rig) -> None:
    """The medium town's fleet in load mode (real envelopes and payloads, default faults) at 100x the normal rate
    for a minute: the ingest's memory (RSS, sampled every 0.5 s) stays bounded, and the backlog drains."""
    from stadtpuls.simulators import FaultConfig, LoadRun, build_city
    from stadtpuls.simulators.timebase import parse_start

    rate = NORMAL_RATE * FLOOD_FACTOR
    city = build_city("medium", 16, "mixed")
    dk.register(rig.db_url, city)
    load = LoadRun(city, seed=16, start_us=parse_start("2025-03-03"), rate=rate, faults=FaultConfig.parse("default"))
    truth: list[dict[str, Any]] = []
    load.truth = truth.append
    ingest = rig.ingest("drill-flood", STADTPULS_QUEUE_MAX="5000")
    baseline = dk.rss_mib(ingest)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append((time.monotonic(), dk.rss_mib(ingest)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    pub = dk.RawPublisher(rig.broker.url, "drill-flood-publisher")
    t0 = time.monotonic()
    sent = 0
    try:
        while time.monotonic() - t0 < FLOOD_SECONDS:
            items = load.chunk(rate // 10)  # a tenth of a second's worth
            pub.publish_many(items)
            sent += len(items)
            delay = t0 + sent / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        pub.close()
        flood_s = time.monotonic() - t0
        expected = load.report.uplinks
        backlog = expected - dk.uplinks(rig.db_url)
        drain_s = dk.wait_until(lambda: dk.uplinks(rig.db_url) >= expected, 240, "backlog drained", 0.5)
        time.sleep(1.5)
    finally:
        stop.set()
        sampler.join(5)
    peak = max(r for _, r in samples)
    first = max(r for t, r in samples if t - t0 < FLOOD_SECONDS / 3)
    last = max(r for t, r in samples if FLOOD_SECONDS * 2 / 3 <= t - t0 <= FLOOD_SECONDS)
    with psycopg.connect(rig.db_url) as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT dedup_key) FROM uplinks").fetchone()  # type: ignore[misc]
        per_device = dict(conn.execute("SELECT dev_eui, count(*) FROM uplinks GROUP BY dev_eui").fetchall())
        dead = dict(conn.execute("SELECT stage, count(*) FROM dead_letters GROUP BY stage").fetchall())
        readings = reading_dups = 0
        for table in dk.DOMAIN.values():
            n, distinct_rows = conn.execute(f"SELECT count(*), count(DISTINCT (dev_eui, time)) FROM {table}").fetchone()  # type: ignore[misc]
            readings += int(n)
            reading_dups += int(n) - int(distinct_rows)
    want = collections.Counter(t["dev_eui"] for t in truth)
    readings_expected = sum(1 for t in truth if "garbage" not in t["faults"])
    f = load.faults.counts
    lost = sum(max(0, n - per_device.get(d, 0)) for d, n in want.items())
    figures = {
        "sent": load.report.sent,
        "garbage": f["garbage"] + f["unknown"] + f["malformed"],
        "stored": int(distinct),
        "expected": expected,
        "readings": readings,
        "readings_expected": readings_expected,
        "duplicates": int(total) - int(distinct) + reading_dups,
        "lost": lost + max(0, readings_expected - readings),
        "rate": rate,
        "flood_seconds": round(flood_s, 1),
        "backlog_at_end": backlog,
        "drain_seconds": round(drain_s, 1),
        "rss_mib": {
            "baseline": round(baseline),
            "peak": round(peak),
            "first_third_max": round(first),
            "last_third_max": round(last),
        },
        "dead_letters": dead,
    }
    dk.record(
        "flood of 100x the normal rate",
        figures,
        time.monotonic() - t0,
        f"{rate}/s ({FLOOD_FACTOR} x {NORMAL_RATE}/s) for {flood_s:.0f} s from the medium town's fleet; "
        f"backlog {backlog} at the end, drained in {drain_s:.0f} s; ingest RSS {baseline:.0f} -> peak "
        f"{peak:.0f} MiB (inbox limited to 5000 messages)",
    )
    assert figures["duplicates"] == 0 and figures["lost"] == 0 and int(distinct) == expected, figures
    assert readings == readings_expected, figures
    assert {k: per_device.get(k, 0) for k in want} == dict(want)
    assert dead.get("envelope", 0) >= f["malformed"] and dead.get("device", 0) >= f["unknown"], figures
    assert dead.get("codec", 0) >= f["garbage"], figures
    assert peak - baseline < 400, figures  # bounded: the inbox and one batch, not the flood
    assert last < first + 150, figures  # and not growing with the flood's length
