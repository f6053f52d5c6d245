"""``stadtpuls dashboards build``: writes the provisioning files, and ``--check`` fails on stale ones."""

from __future__ import annotations

import json

import pytest
import yaml

from stadtpuls.cli import main
from stadtpuls.dashboards.build import DASHBOARD_DIR, DATASOURCE_FILE, PROVISIONING


def test_build_writes_all_files_then_check_passes(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--out", str(tmp_path)]) == 0
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(  # town files (`stadtpuls dashboards towns`, git-ignored) are written per install
        p.relative_to(PROVISIONING).as_posix()
        for p in PROVISIONING.rglob("*")
        if p.is_file() and not p.name.startswith("town-")
    )
    assert written == committed
    assert main(["dashboards", "build", "--out", str(tmp_path), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_names_a_changed_file_and_fails(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["dashboards", "build", "--out", str(tmp_path)])
    path = tmp_path / DASHBOARD_DIR / "stadtpuls-parking.json"
    dash = json.loads(path.read_text())
    dash["title"] = "edited by hand"
    path.write_text(json.dumps(dash))
    capsys.readouterr()
    assert main(["dashboards", "build", "--out", str(tmp_path), "--check"]) == 1
    assert "stadtpuls-parking.json" in capsys.readouterr().err
    assert json.loads(path.read_text())["title"] == "edited by hand", "--check writes nothing"


def test_options_time_zone_and_plain_postgresql(tmp_path) -> None:
    main(["dashboards", "build", "--out", str(tmp_path), "--timezone", "Europe/Lisbon", "--no-timescaledb"])
    dash = json.loads((tmp_path / DASHBOARD_DIR / "stadtpuls-waste.json").read_text())
    assert {v["name"]: v["query"] for v in dash["templating"]["list"]}["tz"] == "Europe/Lisbon"
    datasource = yaml.safe_load((tmp_path / DATASOURCE_FILE).read_text())["datasources"][0]  # the database comes first
    assert datasource["jsonData"]["timescaledb"] is False


def test_bad_time_zone_is_refused_naming_the_setting(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--out", str(tmp_path), "--timezone", "Mars/Olympus"]) == 2
    assert "STADTPULS_TIMEZONE" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
