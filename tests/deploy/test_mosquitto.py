"""deploy/mosquitto/start.sh: the compose broker runs the project's config with password authentication."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from stadtpuls.demo.embedded import broker_config, free_port, port_open

REPO = Path(__file__).resolve().parents[2]
START = REPO / "deploy" / "mosquitto" / "start.sh"
BINARY = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)

pytestmark = pytest.mark.skipif(
    not BINARY or not shutil.which("mosquitto_passwd"), reason="needs the mosquitto and mosquitto_passwd binaries"
)


def _connect(port: int, user: str | None, password: str | None) -> mqtt.ReasonCode | int:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    result: list[object] = []
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect("127.0.0.1", port)
    deadline = time.monotonic() + 5
    while not result and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    assert result, "no CONNACK"
    return result[0]  # type: ignore[return-value]


@pytest.fixture
def broker():  # type: ignore[no-untyped-def]
    # Run as root, mosquitto drops to its own user before it reads the password file: the directory must be
    # reachable for that user (pytest's tmp_path is not).
    tmp_path = Path(tempfile.mkdtemp(prefix="stadtpuls-mosquitto-"))
    tmp_path.chmod(0o755)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(broker_config(port, tmp_path))
    env = {
        **os.environ,
        "MQTT_PASSWORD": "hub-pw-1",
        "MQTT_LNS_PASSWORD": "lns-pw-2",
        "MOSQUITTO_CONF": str(conf),
        "MOSQUITTO_RUN_DIR": str(tmp_path / "run"),
        "MOSQUITTO_BIN": str(BINARY),
    }
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", str(START)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "mosquitto did not listen"
            time.sleep(0.05)
        yield port, tmp_path / "run"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_hub_and_network_server_users_connect_others_are_refused(broker) -> None:  # type: ignore[no-untyped-def]
    port, _ = broker
    assert _connect(port, "stadtpuls", "hub-pw-1") == 0
    assert _connect(port, "lns", "lns-pw-2") == 0
    assert _connect(port, "stadtpuls", "wrong") != 0
    assert _connect(port, None, None) != 0


def test_generated_config_keeps_the_ingest_settings(broker) -> None:  # type: ignore[no-untyped-def]
    _, run = broker
    conf = (run / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "allow_anonymous true" not in conf
    assert f"password_file {run}/passwd" in conf
    for line in ("max_inflight_messages 0", "max_queued_messages 1000000", "persistence true"):
        assert line in conf
    assert "hub-pw-1" not in (run / "passwd").read_text(), "passwords are stored hashed"
    assert (run / "passwd").stat().st_mode & 0o077 == 0


def test_missing_password_stops_the_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MQTT_PASSWORD"}
    proc = subprocess.run(
        ["sh", str(START)], env={**env, "MOSQUITTO_RUN_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=10
    )
    assert proc.returncode != 0 and "MQTT_PASSWORD" in proc.stderr
