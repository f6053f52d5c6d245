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
