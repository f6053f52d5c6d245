"""MQTT security and secrets: ``stadtpuls ingest`` over TLS with the CA and client certificate from the settings
(and a clear error without them), credentials never in logs or ``print-settings``, the warning about plain text to
a non-loopback broker, and no default passwords in the repository."""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import paho.mqtt.client as mqtt
import pytest

from stadtpuls.demo.embedded import EmbeddedBroker
from stadtpuls.ingest.inbox import Inbox
from stadtpuls.ingest.mqtt import MqttConfig, MqttSource, is_loopback
from stadtpuls.settings import Settings, masked

from . import fuzzkit as fk
from . import tlskit
from .conftest import REPO, IngestProcess, ingest_helpers

pytestmark = pytest.mark.slow  # a reliability suite: `make test` runs it, `make test-fast` does not

needs_tls = pytest.mark.skipif(
    tlskit.OPENSSL is None or tlskit.MOSQUITTO is None, reason="needs the openssl and mosquitto commands"
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tlskit.Pki:
    return tlskit.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(pki: tlskit.Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tlskit.TlsBroker]:
    broker = tlskit.TlsBroker(pki, tmp_path_factory.mktemp("tls-broker"))
    yield broker
    broker.stop()


def _env(db: str, mqtt_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "STADTPULS_DATABASE_URL": db,
        "STADTPULS_MQTT_URL": mqtt_url,
        "STADTPULS_SPOOL_DIR": str(tmp_path / "spool"),
        "STADTPULS_MQTT_CLIENT_ID": f"tls-{secrets.token_hex(4)}",
        **extra,
    }


def _publish_tls(broker: tlskit.TlsBroker, pki: tlskit.Pki, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{secrets.token_hex(4)}")
    client.tls_set(
        ca_certs=str(pki.path("ca.crt")), certfile=str(pki.path("client.crt")), keyfile=str(pki.path("client.key"))
    )
    client.connect("localhost", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@needs_tls
def test_ingest_connects_with_ca_and_client_certificate_from_settings_and_stores_uplinks(
    clean_db: str, pki: tlskit.Pki, tls_broker: tlskit.TlsBroker, tmp_path: Path
) -> None:
    ingest_helpers.register(clean_db, fk.fleet_yaml())
    env = _env(
        clean_db,
        tls_broker.url(),
        tmp_path,
        STADTPULS_MQTT_CA_FILE=str(pki.path("ca.crt")),
        STADTPULS_MQTT_CERT_FILE=str(pki.path("client.crt")),
        STADTPULS_MQTT_KEY_FILE=str(pki.path("client.key")),
    )
    ingest = IngestProcess(tmp_path / "ingest.log", **env)
    try:
        ingest.wait_log("MQTT connected")
        assert "tls=True" in ingest.log()
        d = fk.DEVICES[1]
        topic, doc = fk.envelope(d, *fk.VECTORS[d.codec][0])
        _publish_tls(tls_broker, pki, topic, fk.dumps(doc))
        ingest_helpers.wait_for(
            lambda: (
                ingest_helpers.scalar(clean_db, "SELECT count(*) FROM uplinks WHERE dev_eui = %s", (d.dev_eui,)) == 1
            ),
            timeout=30,
        )
    finally:
        assert ingest.stop() == 0
    assert "MQTT connection failed" not in ingest.log()


@needs_tls
@pytest.mark.parametrize(
    ("files", "cause"),
    [
        ({"ca": "ca.crt"}, "CERTIFICATE_REQUIRED"),  # no client certificate
        (
            {"ca": "ca.crt", "cert": "stranger.crt", "key": "stranger.key"},
            "UNKNOWN_CA",
        ),  # not signed by the broker's CA
        ({"cert": "client.crt", "key": "client.key"}, "CERTIFICATE_VERIFY_FAILED"),  # the broker's CA not trusted
    ],
    ids=["no client certificate", "client certificate of another CA", "no CA file"],
)
def test_ingest_without_the_right_certificates_fails_clearly(
    clean_db: str, pki: tlskit.Pki, tls_broker: tlskit.TlsBroker, tmp_path: Path, files: dict[str, str], cause: str
) -> None:
    names = {"ca": "STADTPULS_MQTT_CA_FILE", "cert": "STADTPULS_MQTT_CERT_FILE", "key": "STADTPULS_MQTT_KEY_FILE"}
    env = _env(clean_db, tls_broker.url(), tmp_path, **{names[k]: str(pki.path(v)) for k, v in files.items()})
    ingest = IngestProcess(tmp_path / "ingest.log", **env)
    try:
        ingest.wait_log("MQTT connection failed", timeout=20)
    finally:
        ingest.kill()  # nothing to flush: it never connected
        ingest.stop()
    log = ingest.log()
    assert "MQTT connected" not in log
    line = next(x for x in log.splitlines() if "MQTT connection failed" in x)
    assert "level=error" in line and cause in line.upper() and "STADTPULS_MQTT_CA_FILE" in line, line
    assert log.count("MQTT connection failed") == 1  # once per cause, not once per retry


def _with_password(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@pytest.mark.parametrize("database", ["reachable", "unreachable"])
def test_credentials_never_appear_in_ingest_logs(
    clean_db: str, project_broker: EmbeddedBroker, tmp_path: Path, database: str
) -> None:
    mqtt_pw, db_pw = secrets.token_hex(12), secrets.token_hex(12)
    db = _with_password(clean_db, "postgres", db_pw)  # the test server trusts loopback: the password is ignored
    if database == "unreachable":
        db = _with_password(clean_db.replace(f":{urlsplit(clean_db).port}", ":1"), "postgres", db_pw)
    env = _env(db, _with_password(project_broker.url, "hub", mqtt_pw), tmp_path, STADTPULS_LOG_LEVEL="DEBUG")
    ingest = IngestProcess(tmp_path / "ingest.log", **env)
    try:
        ingest.wait_log("MQTT connected")
        if database == "unreachable":
            ingest.wait_log("database unreachable")
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", project_broker.port)
        publisher.loop_start()
        publisher.publish("application/x/device/0000000000000001/event/up", b"{not json", qos=1).wait_for_publish(5)
        publisher.disconnect()
        publisher.loop_stop()
        ingest.wait_log("batch" if database == "reachable" else "spool", timeout=10)
    finally:
        ingest.stop()
    log = ingest.log()
    assert "auth=True" in log  # the credentials were used
    assert mqtt_pw not in log and db_pw not in log


def test_print_settings_masks_every_secret() -> None:
    pw = {k: secrets.token_hex(10) for k in ("db", "mqtt", "op", "admin")}
    env = {
        "STADTPULS_DATABASE_URL": f"postgresql://u:{pw['db']}@db.example:5432/x",
        "STADTPULS_MQTT_URL": f"mqtts://u:{pw['mqtt']}@broker.example:8883",
        "STADTPULS_OPERATOR_KEY": pw["op"],
        "STADTPULS_ADMIN_KEY": pw["admin"],
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-m", "stadtpuls.cli", "print-settings"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert not any(p in out for p in pw.values()), out
    assert "STADTPULS_DATABASE_URL=postgresql://u:***@db.example:5432/x" in out
    assert "STADTPULS_OPERATOR_KEY=***" in out and "STADTPULS_ADMIN_KEY=***" in out
    s = Settings(database_url=f"postgresql://u:{pw['db']}@h/x", operator_key=pw["op"])  # type: ignore[arg-type]
    assert pw["db"] not in repr(s) and pw["op"] not in str(s)
    assert pw["db"] not in str(masked(s))


# -- plain text to a remote broker ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.5", False),
        ("192.168.1.20", False),
        ("broker.example", False),
        ("0.0.0.0", False),
        ("2001:db8::1", False),
        ("localhost.evil.example", False),
        ("", False),
    ],
)
def test_loopback_check(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_mqtt_to_a_remote_host_logs_a_warning_and_tls_or_loopback_does_not(
    project_broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def connect(url: str) -> list[logging.LogRecord]:
        caplog.clear()
        source = MqttSource(MqttConfig(url=url, client_id=f"warn-{secrets.token_hex(4)}", topics=["x/y"]), Inbox(100))
        with caplog.at_level(logging.INFO, logger="stadtpuls.ingest.mqtt"):
            source.start(wait=5)
            assert source.connected.is_set()
            source.close()
        return [r for r in caplog.records if "without TLS" in r.getMessage()]

    assert connect(project_broker.url) == []  # loopback: no warning
    # The hub must never send test traffic off this machine: the broker stays on loopback and only the check's
    # answer is changed, as it would be for a remote host name.
    monkeypatch.setattr("stadtpuls.ingest.mqtt.is_loopback", lambda host: False)
    warned = connect(project_broker.url)
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert getattr(warned[0], "host", None) == "127.0.0.1"


# -- no default passwords ---------------------------------------------------------------------------------------
_SECRET_WORD = r"(?:password|passwd|pwd|secret|token|api[_-]?key|admin[_-]?key|operator[_-]?key)"
_ASSIGNMENT = re.compile(_SECRET_WORD + r"""\w*["']?\s*[:=]\s*(?P<quote>["']?)(?P<value>[^\s"',;)}]+)""", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:(?P<value>[^@/\s\"']+)@(?P<host>[^/\s:\"'?]+)")
_SHELL_DEFAULT = re.compile(r"\$\{\w*(?:PASSWORD|SECRET|TOKEN|KEY)\w*:?-(?P<value>[^}]+)\}", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^(\$|\{|<|\*|%|\?|\.\.\.|none|null|true|false|required|str|secretstr|field|os\.|self\.|"
    r"settings|env|getenv|args\.|kwargs)",
    re.IGNORECASE,
)


def _tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    skip = ("tests/", "docs/", ".md", ".svg", ".png", ".lock", ".json")
    return [REPO / f for f in out if not f.startswith(skip[:2]) and not f.endswith(skip[2:]) and (REPO / f).is_file()]


def _defaults_in(path: Path, root: Path = REPO) -> list[str]:
    """Lines of ``path`` that hold a password-like literal (one entry per line)."""
    found: list[str] = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        code = line.strip()
        for m in _URL_CREDENTIALS.finditer(code):
            host = m.group("host")
            if not (
                m.group("value").startswith(("$", "{", "<", "***"))
                or host.endswith(".example")
                or host in ("host", "example.com")
            ):
                found.append(f"{path.relative_to(root)}:{n}: {code[:100]}")
        if _SHELL_DEFAULT.search(code):
            found.append(f"{path.relative_to(root)}:{n}: {code[:100]}")
        for m in _ASSIGNMENT.finditer(code):
            value = m.group("value")
            if path.suffix == ".py" and not m.group("quote"):
                continue  # Python: only a quoted literal is a default; anything else is an expression
            if not _PLACEHOLDER.match(value) and len(value) >= 4:
                found.append(f"{path.relative_to(root)}:{n}: {code[:100]}")
    return sorted(set(found))


def test_the_scanner_finds_planted_defaults(tmp_path: Path) -> None:
    planted = tmp_path / "planted.yml"
    planted.write_text(
        "POSTGRES_PASSWORD: hunter22\nurl: postgresql://u:letmein@db:5432/x\npw: ${MQTT_PASSWORD:-changeme}\n"
    )
    assert len(_defaults_in(planted, tmp_path)) == 3


def test_no_default_passwords_in_tracked_files() -> None:
    files = _tracked_files()
    assert any(f.name == "settings.py" for f in files) and len(files) > 50
    found = [hit for f in files for hit in _defaults_in(f)]
    assert not found, "password-like defaults:\n" + "\n".join(found)


def test_secret_settings_have_no_defaults() -> None:
    for name, field in Settings.model_fields.items():
        annotation: Any = field.annotation
        if "SecretStr" in str(annotation):
            assert field.default is None, name
