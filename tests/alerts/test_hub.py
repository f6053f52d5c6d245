"""The hub rules on the real ingest service and a real broker: a network-server source that disconnects opens an
alert that resolves when it is back; the ingest's spool in use while the database refuses its role, resolved once
the spool is written; an ingest that does not answer its health URL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import paho.mqtt.publish as publish
import psycopg
import pytest
from alertstest import Planter

from stadtpuls.alerts.service import AlertService
from stadtpuls.demo.embedded import broker_config, free_port, port_open
from stadtpuls.fleet import apply, parse_text
from stadtpuls.migrate import SERVICE_ROLES, migrate
from stadtpuls.settings import load
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
APP = "00000000-0000-0000-0000-00000000000b"
DEV = "2000000000000001"
FLEET = f"""
sites:
  - {{site_id: lot-h, kind: lot, capacity: 5}}
devices:
  - {{dev_eui: "{DEV}", codec: nwave/nps405}}
"""
PASSWORD = "ingest-pw-hub-3b7d"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, state: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s {state()}")
        time.sleep(0.1)


class Broker:
    def __init__(self, data_dir: Path) -> None:
        assert MOSQUITTO is not None
        self.dir, self.port = data_dir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(broker_config(self.port, self.dir) + ("user root\n" if os.geteuid() == 0 else ""))
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open("127.0.0.1", self.port), 10, "broker listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def hub(clean_db: str, tmp_path: Path) -> Iterator[tuple[Broker, str, str]]:
    """A broker, the ingest (as its role, health on a free port) and the database URL."""
    if MOSQUITTO is None:
        pytest.skip("the hub rule tests need the mosquitto broker (Debian package mosquitto)")
    migrate(clean_db, role_passwords={"ingest": PASSWORD})
    with psycopg.connect(clean_db, autocommit=True) as conn:
        apply(conn, parse_text(FLEET, "yaml"))
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker")
    port = free_port()
    parts = clean_db.split("://", 1)[1].split("@", 1)[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STADTPULS_")}
    env.update(
        STADTPULS_DATABASE_URL=f"postgresql://{SERVICE_ROLES['ingest']}:{PASSWORD}@{parts}",
        STADTPULS_MQTT_URL=f"mqtt://127.0.0.1:{broker.port}",
        STADTPULS_MQTT_CLIENT_ID="hub-rules",
        STADTPULS_SPOOL_DIR=str(tmp_path / "spool"),
        STADTPULS_METRICS_PORT=str(port),
        STADTPULS_FLUSH_INTERVAL="0.05",
    )
    log = open(tmp_path / "ingest.log", "ab")  # noqa: SIM115 - closed below
    ingest = subprocess.Popen([sys.executable, "-m", "stadtpuls.cli", "ingest"], env=env, stdout=log, stderr=log)
    try:
        wait_until(lambda: port_open("127.0.0.1", port), 30, "ingest health listening")
        yield broker, f"http://127.0.0.1:{port}/health", clean_db
    finally:
        ingest.terminate()
        ingest.wait(30)
        log.close()
        broker.stop()
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {SERVICE_ROLES['ingest']} LOGIN")


def active(conn: psycopg.Connection, rule: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT subject, message FROM alerts WHERE rule_id = %s AND state <> 'resolved' ORDER BY 1", (rule,)
    ).fetchall()


def round_now(service: AlertService, conn: psycopg.Connection) -> None:
    service.round(conn)


def test_a_disconnected_source_and_the_spool_in_use_open_and_resolve(
    hub: tuple[Broker, str, str], conn: psycopg.Connection, plant: Planter
) -> None:
    broker, health_url, db = hub
    service = AlertService(load(database_url=db, alerts_ingest_health_url=health_url, alerts_metrics_port=0), db)
    try:
        wait_until(lambda: (round_now(service, conn), not active(conn, "source-disconnected"))[1], 30, "connected")
        broker.stop()
        wait_until(
            lambda: (round_now(service, conn), bool(active(conn, "source-disconnected")))[1],
            30,
            "alert",
            lambda: str(conn.execute("SELECT * FROM ingest_status").fetchall()),
        )
        [(subject, message)] = active(conn, "source-disconnected")
        assert subject.startswith("source:") and "disconnected" in message
        broker.start()
        wait_until(lambda: (round_now(service, conn), not active(conn, "source-disconnected"))[1], 60, "resolved")

        # the database refuses the ingest's role: what arrives goes to the spool, and the spool rule fires
        conn.execute(f"ALTER ROLE {SERVICE_ROLES['ingest']} NOLOGIN")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (SERVICE_ROLES["ingest"],)
        )
        msg = chirpstack_uplink(
            dev_eui=DEV, application_id=APP, time=datetime.now(UTC), f_port=1, payload=b"\x01", f_cnt=1
        )
        publish.single(chirpstack_topic(APP, DEV), orjson.dumps(msg), qos=1, hostname="127.0.0.1", port=broker.port)
        wait_until(lambda: (round_now(service, conn), bool(active(conn, "spool-in-use")))[1], 60, "spool alert")
        assert "in the ingest's spool" in active(conn, "spool-in-use")[0][1]
        conn.execute(f"ALTER ROLE {SERVICE_ROLES['ingest']} LOGIN")
        wait_until(lambda: (round_now(service, conn), not active(conn, "spool-in-use"))[1], 90, "spool written")
        assert conn.execute("SELECT count(*) FROM uplinks WHERE dev_eui = %s", (DEV,)).fetchone() == (1,)
        wait_until(lambda: (round_now(service, conn), not active(conn, "source-disconnected"))[1], 60, "connected")
        events = conn.execute(
            "SELECT a.rule_id, e.state FROM alert_events e JOIN alerts a USING (alert_id)"
            " WHERE a.rule_id IN ('source-disconnected', 'spool-in-use') ORDER BY e.event_id"
        ).fetchall()
        # one change each, and nothing left open (the ingest may also drop its broker connection while the
        # database refuses it: that is a disconnection of its own, opened and resolved again)
        assert [s for r, s in events if r == "spool-in-use"] == ["open", "resolved"]
        assert events[:2] == [("source-disconnected", "open"), ("source-disconnected", "resolved")]
        assert [s for r, s in events if r == "source-disconnected"].count("open") == len(
            [s for r, s in events if r == "source-disconnected"]
        ) // 2
    finally:
        service.sender.close()


def test_an_ingest_that_does_not_answer_opens_a_hub_alert(conn: psycopg.Connection, clean_db: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/health"  # nothing listens
    service = AlertService(load(database_url=clean_db, alerts_ingest_health_url=url, alerts_metrics_port=0), clean_db)
    try:
        round_now(service, conn)
    finally:
        service.sender.close()
    [(subject, message)] = active(conn, "source-disconnected")
    assert subject == "ingest" and "does not answer" in message
