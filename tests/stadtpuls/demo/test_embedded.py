"""The embedded services say which extra to install when their packages are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from stadtpuls.demo import embedded
from stadtpuls.demo.embedded import EXTRA_INSTALL, EmbeddedBroker, EmbeddedPostgres, MissingExtra


def _without(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    real = embedded.find_spec
    monkeypatch.setattr(embedded, "find_spec", lambda name: None if name == missing else real(name))


def test_embedded_postgres_without_the_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, "embedded_postgres")
    with pytest.raises(MissingExtra) as err:
        EmbeddedPostgres(tmp_path / "pg").start()
    assert EXTRA_INSTALL in str(err.value) and "STADTPULS_DATABASE_URL" in str(err.value)
    assert err.value.module == "embedded_postgres"
    assert not (tmp_path / "pg").exists()


def test_in_process_broker_without_the_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(monkeypatch, "amqtt")
    with pytest.raises(MissingExtra) as err:
        EmbeddedBroker(tmp_path / "broker", prefer="amqtt").start(timeout=1)
    assert EXTRA_INSTALL in str(err.value) and "STADTPULS_MQTT_URL" in str(err.value)


def test_broker_config_overrides_replace_the_projects_values_and_refuse_unknown_settings(tmp_path: Path) -> None:
    conf = embedded.broker_config(18831, tmp_path, {"max_queued_bytes": "123"})
    assert "max_queued_bytes 123" in conf.splitlines()
    assert "max_queued_bytes 536870912" not in conf
    assert "listener 18831 127.0.0.1" in conf.splitlines()
    assert conf == embedded.broker_config(18831, tmp_path).replace("max_queued_bytes 536870912", "max_queued_bytes 123")
    with pytest.raises(ValueError, match="max_queued_bytez"):
        embedded.broker_config(18831, tmp_path, {"max_queued_bytez": "1"})
