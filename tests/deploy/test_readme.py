"""The README's Deployment section describes the compose file that is there."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from stadtpuls.settings import DEFAULT_TOPICS, PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
SECTION = README.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
SERVICES = yaml.safe_load(COMPOSE_TEXT)["services"]
CODE = re.findall(r"```[a-z]*\n(.*?)```", SECTION, flags=re.S)


def test_every_service_is_described() -> None:
    named = set(re.findall(r"`([a-z][a-z-]*)`", SECTION))
    assert set(SERVICES) <= named, f"not in the README: {set(SERVICES) - named}"


def test_compose_commands_name_real_services_and_profiles() -> None:
    commands = [
        shlex.split(line.split("#")[0])
        for block in CODE
        for line in block.splitlines()
        if line.startswith("docker compose")
    ]
    assert commands
    profiles = {p for s in SERVICES.values() for p in s.get("profiles", [])}
    for argv in commands:
        if "--profile" in argv:
            assert argv[argv.index("--profile") + 1] in profiles
        if "run" in argv:
            rest = argv[argv.index("run") + 1 :]
            words = [w for i, w in enumerate(rest) if not w.startswith("-") and not (i and rest[i - 1] == "-v")]
            assert words[0] in SERVICES, argv
            assert words[1] in ("devices", "migrate", "keys", "print-settings"), argv


def test_required_secrets_are_exactly_the_documented_ones() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_TEXT))
    table = set(re.findall(r"^\| `(\w+)` \|", SECTION, flags=re.M))
    env_example = set(re.findall(r"^(\w+)=\$\(openssl", SECTION, flags=re.M))
    assert required == table == env_example


def test_mentioned_variables_exist() -> None:
    settings = {PREFIX + n.upper() for n in Settings.model_fields}
    mentioned = set(re.findall(r"\b(STADTPULS_[A-Z0-9_]+)", SECTION))
    assert mentioned and mentioned <= settings, mentioned - settings
    others = set(re.findall(r"\b((?:MQTT|GRAFANA|POSTGRES)_[A-Z_]+)", SECTION))
    assert others <= set(re.findall(r"\b((?:MQTT|GRAFANA|POSTGRES)_[A-Z_]+)", COMPOSE_TEXT))


def test_ports_and_topics_match() -> None:
    for port in re.findall(r"ports?\s+(\d{4})(?:\s+and\s+(\d{4}))?", SECTION):
        for p in filter(None, port):
            published = {str(x).split(":")[-2] for s in SERVICES.values() for x in s.get("ports", [])}
            assert p in published, p
    assert "application/+/device/+/event/up" in DEFAULT_TOPICS and "`application/+/device/+/event/up`" in SECTION
    assert "v3/+/devices/+/up" in DEFAULT_TOPICS
    assert "`v3/{application id}@{tenant id}/devices/+/up`" in SECTION
    assert "`$share/stadtpuls/application/+/device/+/event/up`" in SECTION and "qos = 1" in SECTION
    tts = next(b for b in CODE if "mqtts://" in b and "%40" in b)
    assert ":8883" in tts and "%40" in tts and "STADTPULS_MQTT_QOS=0" in tts
