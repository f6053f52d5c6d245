from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from stadtpuls.settings import PREFIX, Settings, SettingsError, load, masked

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\|\s*`(STADTPULS_[A-Z0-9_]+)`", readme, flags=re.M))
    fields = {PREFIX + name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from README"
    assert documented - fields == set(), "README documents settings that do not exist"


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STADTPULS_BATCH_SIZE", "lots")
    with pytest.raises(SettingsError) as err:
        load()
    assert err.value.variables == ["STADTPULS_BATCH_SIZE"]
    assert "STADTPULS_BATCH_SIZE" in str(err.value)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("STADTPULS_MQTT_URL", "http://broker:1883"),
        ("STADTPULS_DATABASE_URL", "mysql://x"),
        ("STADTPULS_TIMEZONE", "Europe/Atlantis"),
        ("STADTPULS_SERVICE_DAYS", "[7]"),
    ],
)
def test_invalid_values_fail_at_start(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SettingsError) as err:
        load()
    assert var in err.value.variables


def test_print_settings_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STADTPULS_DATABASE_URL", "postgresql://hub:s3cret@db:5432/stadtpuls")
    monkeypatch.setenv("STADTPULS_OPERATOR_KEY", "op-key-123")
    out = subprocess.run(
        [sys.executable, "-m", "stadtpuls.cli", "print-settings"], capture_output=True, text=True, check=True
    ).stdout
    assert "s3cret" not in out and "op-key-123" not in out
    assert "STADTPULS_DATABASE_URL=postgresql://hub:***@db:5432/stadtpuls" in out
    assert "STADTPULS_OPERATOR_KEY=***" in out


def test_masked_lists_every_setting() -> None:
    assert set(masked(Settings())) == {PREFIX + n.upper() for n in Settings.model_fields}


def test_cli_reports_bad_setting_without_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STADTPULS_API_PORT", "99999")
    proc = subprocess.run([sys.executable, "-m", "stadtpuls.cli", "print-settings"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "STADTPULS_API_PORT" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ortools_solver_needs_ortools_installed() -> None:
    if importlib.util.find_spec("ortools") is not None:
        assert Settings(route_solver="ortools").route_solver == "ortools"
    else:
        with pytest.raises(ValidationError, match="ortools"):
            Settings(route_solver="ortools")
    assert Settings(route_solver="heuristic").route_solver == "heuristic"
