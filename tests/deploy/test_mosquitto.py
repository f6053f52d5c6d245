"""deploy/mosquitto/start.sh: the compose broker runs the project's config with password authentication, one role
per user (ACL), client ids bound to users and an optional TLS listener; each refusal is proven on a real Mosquitto."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


APP = "b3a7c1de-0a6f-4c39-9d0e-1f2a3b4c5d6e"  # the ChirpStack application the `lns` user publishes for
OTHER_APP = "attacker-app"
UP = "application/{app}/device/{eui}/event/up"


def _start(extra: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
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
        "MQTT_LNS_APPLICATIONS": APP,
        "MQTT_SIMULATOR_PASSWORD": "sim-pw-3",
        "MOSQUITTO_CONF": str(conf),
        "MOSQUITTO_RUN_DIR": str(tmp_path / "run"),
        "MOSQUITTO_BIN": str(BINARY),
        **(extra or {}),
    }
    log = tmp_path / "mosquitto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", str(START)], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "mosquitto did not listen"
        time.sleep(0.05)
    return proc, port, tmp_path


def _stop(proc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def broker():  # type: ignore[no-untyped-def]
    proc, port, tmp_path = _start()
    try:
        yield port, tmp_path / "run"
    finally:
        _stop(proc, tmp_path)


class Peer:
    """One MQTT v5 client of a user, its network loop in a thread; records acks, messages and disconnects."""

    def __init__(self, port: int, user: str, password: str, client_id: str = "", **tls: str) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(user, password)
        if tls:
            self.client.tls_set(ca_certs=tls["ca"])
        self.connected: list[int] = []
        self.disconnected: list[int] = []
        self.puback: dict[int, int] = {}
        self.suback: dict[int, list[int]] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.append(rc.value)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.append(rc.value)
        self.client.on_publish = lambda c, u, mid, rc, p: self.puback.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.suback.__setitem__(mid, [r.value for r in rcs])
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", port, clean_start=False)
        self.client.loop_start()
        _until(lambda: self.connected, "CONNACK")

    def publish(self, topic: str) -> int:
        """The PUBACK reason code of one QoS 1 publish (0 accepted, 0x87 not authorised)."""
        mid = self.client.publish(topic, b'{"probe": true}', qos=1).mid
        _until(lambda: mid in self.puback, f"PUBACK for {topic}")
        return self.puback[mid]

    def subscribe(self, topic: str) -> int:
        """The SUBACK reason code of one subscription (1 granted QoS 1, 0x87 not authorised)."""
        _, mid = self.client.subscribe(topic, qos=1)
        _until(lambda: mid in self.suback, f"SUBACK for {topic}")
        return self.suback[mid][0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _until(predicate, what: str, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.02)


NOT_AUTHORISED = 0x87
ACCEPTED = (0x00, 0x10)  # success, and success with no matching subscriber


def _hears(listener: Peer, topic_filter: str, talker: Peer, topic: str) -> bool:
    """Whether ``listener``, subscribed to ``topic_filter``, receives what ``talker`` publishes (allowed) on
    ``topic``. Mosquitto grants any subscription and applies the read rules to each message delivered."""
    listener.subscribe(topic_filter)
    before = len(listener.messages)
    assert talker.publish(topic) in ACCEPTED
    time.sleep(0.4)
    return len(listener.messages) > before


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


def test_network_server_user_publishes_only_its_own_applications_uplinks(broker) -> None:  # type: ignore[no-untyped-def]
    port, _ = broker
    ingest = Peer(port, "stadtpuls", "hub-pw-1", "stadtpuls-ingest")
    lns = Peer(port, "lns", "lns-pw-2")
    try:
        assert ingest.subscribe("application/+/device/+/event/up") == 1
        assert lns.publish(UP.format(app=APP, eui="0004a30b001a2b3c")) in ACCEPTED
        assert lns.publish(UP.format(app=OTHER_APP, eui="ffffffffffffffff")) == NOT_AUTHORISED
        assert lns.publish("v3/city-app@ttn/devices/x/up") == NOT_AUTHORISED  # not a ChirpStack topic of its own
        assert lns.publish("stadtpuls/anything") == NOT_AUTHORISED
        _until(lambda: ingest.messages, "the allowed uplink at the ingest")
        time.sleep(0.3)
        assert [t for t, _ in ingest.messages] == [UP.format(app=APP, eui="0004a30b001a2b3c")]
        # it reads nothing, the ingest's stream least of all
        assert not _hears(lns, "#", lns, UP.format(app=APP, eui="0004a30b001a2b3d"))
    finally:
        lns.close()
        ingest.close()


def test_ingest_user_only_subscribes_to_the_network_server_topics(broker) -> None:  # type: ignore[no-untyped-def]
    port, _ = broker
    ingest = Peer(port, "stadtpuls", "hub-pw-1", "stadtpuls-ingest")
    sim = Peer(port, "simulator", "sim-pw-3")
    try:
        assert _hears(ingest, "$share/hub/v3/+/devices/+/up", sim, "v3/demo@stadtpuls/devices/bin-1/up")
        assert _hears(ingest, "application/+/device/+/event/up", sim, UP.format(app="demo", eui="0004a30b001a2b3c"))
        # a subscription is granted by the protocol, but nothing outside its topics is delivered: not even the
        # broker's retained $SYS/broker/version
        ingest.subscribe("$SYS/#")
        time.sleep(0.5)
        assert not [t for t, _ in ingest.messages if t.startswith("$SYS")]
        assert ingest.publish(UP.format(app=APP, eui="0004a30b001a2b3c")) == NOT_AUTHORISED
        assert ingest.publish("v3/city-app@ttn/devices/x/down/push") == NOT_AUTHORISED
    finally:
        sim.close()
        ingest.close()


def test_simulator_publishes_network_server_messages_and_reads_nothing(broker) -> None:  # type: ignore[no-untyped-def]
    port, _ = broker
    sim = Peer(port, "simulator", "sim-pw-3")
    try:
        assert sim.publish("v3/demo-app@stadtpuls/devices/bin-1/up") in ACCEPTED
        assert sim.publish(UP.format(app="demo", eui="0004a30b001a2b3c")) in ACCEPTED
        assert sim.publish("v3/demo-app@stadtpuls/devices/bin-1/down/push") == NOT_AUTHORISED
        assert not _hears(sim, "#", sim, "v3/demo-app@stadtpuls/devices/bin-1/up")
    finally:
        sim.close()


def test_no_user_takes_over_the_ingests_session(broker) -> None:  # type: ignore[no-untyped-def]
    port, _ = broker
    ingest = Peer(port, "stadtpuls", "hub-pw-1", "stadtpuls-ingest")
    assert ingest.subscribe("application/+/device/+/event/up") == 1
    thief = Peer(port, "lns", "lns-pw-2", "stadtpuls-ingest")  # the ingest's client id, another user
    try:
        time.sleep(0.5)
        assert ingest.disconnected == [] and ingest.client.is_connected()  # not kicked off
        assert thief.publish(UP.format(app=APP, eui="0004a30b001a2b3c")) in ACCEPTED
        _until(lambda: ingest.messages, "uplinks still reach the ingest's session")
        assert thief.messages == []  # the session's subscriptions are not the thief's
    finally:
        thief.close()
        ingest.close()


def test_health_user_reads_only_the_broker_version(broker) -> None:  # type: ignore[no-untyped-def]
    port, run = broker
    health = Peer(port, "health", (run / "health.pw").read_text().strip())
    try:
        assert health.subscribe("$SYS/broker/version") == 1
        _until(lambda: health.messages, "the retained version")
        assert health.publish("application/x/device/y/event/up") == NOT_AUTHORISED
        sim = Peer(port, "simulator", "sim-pw-3")
        assert not _hears(health, "application/+/device/+/event/up", sim, UP.format(app="x", eui="0004a30b001a2b3c"))
        sim.close()
    finally:
        health.close()


def test_generated_acl_and_session_binding(broker) -> None:  # type: ignore[no-untyped-def]
    _, run = broker
    conf = (run / "mosquitto.conf").read_text()
    assert f"acl_file {run}/acl" in conf and "use_username_as_clientid true" in conf
    acl = (run / "acl").read_text()
    assert f"topic write application/{APP}/device/+/event/+" in acl
    assert "topic readwrite" not in acl and "topic #" not in acl
    assert int(dict(line.split(" ", 1) for line in conf.splitlines() if " " in line)["max_queued_bytes"]) > 0


def test_an_application_id_with_a_wildcard_or_level_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "MQTT_PASSWORD": "x", "MQTT_LNS_PASSWORD": "y", "MQTT_LNS_APPLICATIONS": "ok,a/#"}
    proc = subprocess.run(
        ["sh", str(START)], env={**env, "MOSQUITTO_RUN_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=10
    )
    assert proc.returncode == 2 and "not an application id: a/#" in proc.stderr


@pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl command")
def test_tls_listener_with_the_configured_certificate() -> None:
    sys.path.insert(0, str(REPO / "tests" / "reliability"))
    from tlskit import make_pki

    pki_dir = Path(tempfile.mkdtemp(prefix="stadtpuls-pki-"))
    pki_dir.chmod(0o755)
    pki = make_pki(pki_dir)
    for f in pki_dir.iterdir():
        f.chmod(0o644)  # mosquitto reads them as its own user
    tls_port = free_port()
    proc, port, tmp_path = _start(
        {
            "MQTT_TLS_CERT_FILE": str(pki.path("server.crt")),
            "MQTT_TLS_KEY_FILE": str(pki.path("server.key")),
            "MQTT_TLS_PORT": str(tls_port),
        }
    )
    try:
        _until(lambda: port_open("127.0.0.1", tls_port), "the TLS listener")
        peer = Peer(tls_port, "stadtpuls", "hub-pw-1", ca=str(pki.path("ca.crt")))
        assert peer.connected == [0] and peer.subscribe("application/+/device/+/event/up") == 1
        peer.close()
        refused = Peer(tls_port, "stadtpuls", "wrong-password", ca=str(pki.path("ca.crt")))
        assert refused.connected[0] != 0
        refused.client.loop_stop()
    finally:
        _stop(proc, tmp_path)
        shutil.rmtree(pki_dir, ignore_errors=True)
