"""Fault drills: a simulated town's messages with their ground truth, published into a broker of the drill's own,
stored by ``stadtpuls ingest`` processes, then counted against the truth.

The count of a drill (:func:`count`):

* ``sent``: messages published (uplinks, joins, duplicates, injected bad ones);
* ``garbage``: injected bad messages (broken JSON, undecodable payloads, unknown devices);
* ``stored``: raw uplinks stored (distinct deduplication keys), to equal the delivered uplinks of the truth;
* ``readings``: domain rows (bin levels, parking states, passenger counts, environment readings), to equal the
  truth's measurements that were delivered and decodable;
* ``duplicates``: rows stored twice (uplinks by key, domain rows by device and time), to be 0;
* ``lost``: delivered uplinks or measurements missing from the database, to be 0;
* dead letters by stage: one row per injected bad message, none missing and none twice
  (``dead_letters_duplicated`` = 0); a bad message delivered again after a crash adds to its row's ``repeats``,
  and ``dead_letters_repeated`` counts those extra deliveries.
"""

from __future__ import annotations

import collections
import os
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg

from stadtpuls.demo.embedded import broker_config, free_port, port_open
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.simulators import FaultConfig, SimConfig, Simulation, TruthWriter, build_city, registry_yaml
from stadtpuls.simulators.city import City
from stadtpuls.simulators.mqtt_raw import RawPublisher
from stadtpuls.simulators.timebase import HOUR_US, parse_start

from .conftest import IngestProcess, write_artifact
from .tlskit import MOSQUITTO

DOMAIN = {
    "bin": "bin_levels",
    "space": "parking_events",
    "vehicle": "passenger_counts",
    "station": "environment_readings",
}


@dataclass
class Stream:
    """A simulated period: the messages in publication order and the ground truth."""

    city: City
    items: list[tuple[bytes, bytes]]
    lines: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def delivered_keys(self) -> set[int]:
        """The stored keys (``uplinks.dedup_key``) of the delivered uplinks."""
        return {
            stored_key(uuid.UUID(ln["dedup"]).bytes)
            for ln in self.lines
            if ln.get("dedup") and "gaps" not in ln["faults"]
        }

    @property
    def readings(self) -> dict[str, int]:
        out: collections.Counter[str] = collections.Counter()
        for ln in self.lines:
            if ln["kind"] in DOMAIN and not {"gaps", "garbage"} & set(ln["faults"]):
                out[DOMAIN[ln["kind"]]] += 1
        return dict(out)

    @property
    def garbage(self) -> int:
        f = self.summary["faults"]
        return int(f["garbage"] + f["unknown"] + f["malformed"])


def simulate(size: str = "small", seed: int = 5, hours: float = 24, faults: str = "default") -> Stream:
    city = build_city(size, seed, "mixed")
    truth = TruthWriter(keep=True)
    config = SimConfig(
        city=size,
        seed=seed,
        start_us=parse_start("2025-03-03"),
        duration_us=int(hours * HOUR_US),
        faults=FaultConfig.parse(faults),
    )
    items = [(m.topic.encode(), m.payload) for m in Simulation(config, truth, city).messages()]
    *lines, last = truth.lines
    return Stream(city, items, lines, last["summary"])


def register(url: str, city: City) -> None:
    with psycopg.connect(url) as conn:
        report = apply(conn, parse_text(registry_yaml(city), "yaml"))
    assert not report.errors, report.errors[:5]


def publish(broker_url: str, items: list[tuple[bytes, bytes]], *, rate: float = 0, chunk: int = 500) -> float:
    """Publish at QoS 1 (every message acknowledged by the broker); ``rate`` messages/s (0: as fast as possible).
    Returns the seconds it took."""
    pub = RawPublisher(broker_url, f"drill-pub-{secrets.token_hex(4)}")
    t0 = time.monotonic()
    try:
        for k in range(0, len(items), chunk):
            if rate > 0:
                delay = t0 + k / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            pub.publish_many(items[k : k + chunk])
    finally:
        pub.close()
    return time.monotonic() - t0


def scalar(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return None if row is None else row[0]


def uplinks(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM uplinks"))


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll until ``predicate()``; returns the seconds waited, fails after ``timeout``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - t0


def wait_stored(url: str, stream: Stream, timeout: float) -> float:
    """Wait until every delivered uplink is stored and the dead letters cover the injected garbage."""
    want = len(stream.delivered_keys)
    f = stream.summary["faults"]

    def done() -> bool:
        return (
            uplinks(url) >= want
            and int(scalar(url, "SELECT count(DISTINCT payload) FROM dead_letters"))
            >= (f["malformed"] + f["unknown"] + f["garbage"]) * 0.9
        )

    waited = wait_until(done, timeout, "every uplink stored")
    time.sleep(1.5)  # a late redelivery would show up now as a duplicate attempt
    return waited


def count(url: str, stream: Stream) -> dict[str, Any]:
    """The drill's figures (module docstring)."""
    with psycopg.connect(url, autocommit=True) as conn:
        keys = [k for (k,) in conn.execute("SELECT dedup_key FROM uplinks")]
        readings, reading_dups = {}, 0
        for table in DOMAIN.values():
            n, distinct = conn.execute(f"SELECT count(*), count(DISTINCT (dev_eui, time)) FROM {table}").fetchone()  # type: ignore[misc]
            readings[table] = int(n)
            reading_dups += int(n) - int(distinct)
        dead, deliveries = collections.Counter(), collections.Counter()
        for stage, rows, repeats in conn.execute(
            "SELECT stage, count(*), sum(repeats) FROM dead_letters GROUP BY stage"
        ):
            dead[stage], deliveries[stage] = int(rows), int(repeats)
    delivered = stream.delivered_keys
    stored = set(keys)
    expected_readings = stream.readings
    lost_readings = sum(max(0, expected_readings.get(t, 0) - readings.get(t, 0)) for t in DOMAIN.values())
    f = stream.summary["faults"]
    garbage_copies = sum(1 for ln in stream.lines if "garbage" in ln["faults"] and "duplicates" in ln["faults"])
    expected_dead = {"envelope": f["malformed"], "device": f["unknown"], "codec": f["garbage"]}
    expected_deliveries = sum(expected_dead.values()) + garbage_copies
    return {
        "sent": len(stream.items),
        "garbage": stream.garbage,
        "stored": len(stored),
        "expected": len(delivered),
        "readings": sum(readings.values()),
        "readings_expected": sum(expected_readings.values()),
        "duplicates": (len(keys) - len(stored)) + reading_dups,
        "lost": len(delivered - stored) + lost_readings,
        "unexpected": len(stored - delivered),
        "dead_letters": dict(dead),
        "dead_letters_expected": expected_dead,
        "dead_letters_duplicated": sum(dead.values()) - sum(expected_dead.values()),
        "dead_letters_repeated": max(0, sum(deliveries.values()) - expected_deliveries),
        "dead_letters_missing": sum(max(0, v - dead.get(k, 0)) for k, v in expected_dead.items()),
    }


def assert_exact(figures: dict[str, Any]) -> None:
    assert figures["duplicates"] == 0, figures
    assert figures["lost"] == 0 and figures["unexpected"] == 0, figures
    assert figures["stored"] == figures["expected"], figures
    assert figures["readings"] == figures["readings_expected"], figures
    assert figures["dead_letters_missing"] == 0 and figures["dead_letters_duplicated"] == 0, figures
    assert set(figures["dead_letters"]) <= {"envelope", "device", "codec"}, figures


def record(name: str, figures: dict[str, Any], seconds: float, notes: str, **extra: Any) -> None:
    write_artifact("drills", name, {**figures, "seconds": round(seconds, 1), "notes": notes, **extra})


class DrillBroker:
    """Mosquitto with the project's config (persistence, large queues) on a port and directory of the drill's own,
    stopped and started again on the same port and persistence file."""

    def __init__(self, data_dir: Path) -> None:
        assert MOSQUITTO is not None
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        conf = self.data_dir / "mosquitto.conf"
        # run as root, Mosquitto would switch to its own user, who cannot write into the test's private directory
        extra = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            broker_config(self.port, self.data_dir)
            + extra
            + "log_dest file "
            + str(self.data_dir / "mosquitto.log")
            + "\n"
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open("127.0.0.1", self.port), 10, "broker listening", 0.05)

    def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file (sessions and their queued messages) and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None


@dataclass
class Rig:
    """A drill's broker (own Mosquitto with the project's config and persistence), database and ingest settings."""

    db_url: str
    broker: DrillBroker
    tmp: Path
    processes: list[IngestProcess] = field(default_factory=list)

    def ingest(self, client_id: str, db_url: str | None = None, **env: str) -> IngestProcess:
        values = {
            "STADTPULS_DATABASE_URL": db_url or self.db_url,
            "STADTPULS_MQTT_URL": self.broker.url,
            "STADTPULS_MQTT_CLIENT_ID": client_id,
            "STADTPULS_SPOOL_DIR": str(self.tmp / "spool"),
            "STADTPULS_BATCH_SIZE": "2000",
            **env,
        }
        log = self.tmp / f"{client_id}.log"
        before = log.read_text(errors="replace").count("MQTT connected") if log.exists() else 0
        p = IngestProcess(log, **values)
        self.processes.append(p)
        p.wait_log("MQTT connected", timeout=30, count=before + 1)
        return p

    def close(self) -> None:
        for p in self.processes:
            p.kill()
            p.stop()
        self.broker.stop()


def rss_mib(process: IngestProcess) -> float:
    return float(psutil.Process(process.proc.pid).memory_info().rss) / (1 << 20)
