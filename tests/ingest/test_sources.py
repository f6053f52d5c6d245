"""The sources configuration: the YAML file, its errors, and STADTPULS_MQTT_URL as a one-source configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from stadtpuls.ingest.sources import MqttBrokerSource, SourcesError, TtsSource, load_sources, mqtt_config
from stadtpuls.settings import Settings

DOC = """
sources:
  - name: stadtwerke
    kind: tts
    cluster: https://eu1.cloud.thethings.network/
    application_id: stadtwerke-parken
    api_key_env: STADTWERKE_KEY
    backfill: {interval: 10m, margin: 90s, retention: 30d}
  - name: kreis
    kind: mqtt
    url: mqtts://chirpstack.kreis.example:8883
    topics: [application/+/device/+/event/up]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_tts_application_and_chirpstack_broker_from_yaml(tmp_path: Path) -> None:
    settings = Settings(sources_file=_write(tmp_path, DOC), mqtt_client_id="hub")
    tts, broker = load_sources(settings, {"STADTWERKE_KEY": "NNSXS.A/B+C"})
    assert isinstance(tts, TtsSource) and isinstance(broker, MqttBrokerSource)
    assert tts.cluster == "https://eu1.cloud.thethings.network" and tts.tenant == "ttn"
    assert (tts.backfill.interval, tts.backfill.margin, tts.backfill.retention) == (600, 90, 30 * 86400)
    config = mqtt_config(tts, settings)
    # user <app>@<tenant>, the API key as password (URL-quoted), TLS on the cluster's MQTT port, QoS 0
    assert config.url == "mqtts://stadtwerke-parken%40ttn:NNSXS.A%2FB%2BC@eu1.cloud.thethings.network:8883"
    assert config.topics == ["v3/stadtwerke-parken@ttn/devices/+/up", "v3/stadtwerke-parken@ttn/devices/+/join"]
    assert (config.qos, config.client_id) == (0, "hub-stadtwerke")
    chirp = mqtt_config(broker, settings)
    assert (chirp.url, chirp.topics, chirp.qos, chirp.client_id) == (
        "mqtts://chirpstack.kreis.example:8883",
        ["application/+/device/+/event/up"],
        1,
        "hub-kreis",
    )
    assert "NNSXS" not in repr(tts)


def test_mqtt_url_alone_is_a_one_source_configuration() -> None:
    settings = Settings(mqtt_url="mqtt://broker:1883", mqtt_client_id="hub", mqtt_share_group="g", mqtt_qos=1)
    (source,) = load_sources(settings, {})
    config = mqtt_config(source, settings)
    assert (config.url, config.client_id, config.share_group) == ("mqtt://broker:1883", "hub", "g")
    assert config.topics == list(settings.mqtt_topics)
    assert load_sources(Settings(), {}) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (DOC, "environment variable STADTWERKE_KEY (the API key) is not set"),
        ("sources: []", "sources: List should have at least 1 item"),
        ("sources: [{name: a, kind: mqtt, url: 'http://x'}]", "must be mqtt://host:port"),
        ("sources: [{name: a, kind: mqtt, url: 'mqtt://x'}, {name: a, kind: mqtt, url: 'mqtt://y'}]", "unique: a"),
        ("sources: [{name: a, kind: lora, url: 'mqtt://x'}]", "does not match any of the expected tags"),
        (
            "sources: [{name: a, kind: tts, cluster: 'https://c', application_id: x1, api_key_env: K,"
            " backfill: {interval: soon}}]",
            "not a duration",
        ),
        ("sources: {", "not YAML"),
    ],
)
def test_a_bad_sources_file_fails_with_its_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SourcesError) as e:
        load_sources(Settings(sources_file=path), {})
    assert e.value.path == path
    assert problem in str(e.value)


def test_a_missing_sources_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(Settings(sources_file=tmp_path / "missing.yaml"), {})
