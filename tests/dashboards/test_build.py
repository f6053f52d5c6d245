"""The committed provisioning files: fresh, valid Grafana dashboards, one datasource uid, no secrets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from stadtpuls.dashboards.build import (
    DASHBOARD_DIR,
    DATASOURCE_FILE,
    PROVIDER_FILE,
    PROVISIONING,
    BuildOptions,
    build,
    stale,
    write,
)
from stadtpuls.dashboards.macros import parse_interval, referenced_variables
from stadtpuls.dashboards.panels import SCHEMA_VERSION

DASHBOARDS = [json.loads(p.read_text()) for p in sorted((PROVISIONING / DASHBOARD_DIR).glob("*.json"))]
SOURCES = yaml.safe_load((PROVISIONING / DATASOURCE_FILE).read_text())["datasources"]
DATASOURCE = next(d for d in SOURCES if d["uid"] == "stadtpuls-db")
PROMETHEUS = next(d for d in SOURCES if d["type"] == "prometheus")
IDS = [d["uid"] for d in DASHBOARDS]
RAW_TABLES = ("uplinks", "bin_levels", "parking_events", "passenger_counts", "environment_readings")


def _targets(dash: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, t) for panel in dash["panels"] for t in panel.get("targets", [])]


def test_committed_files_are_a_fresh_build() -> None:
    assert stale(PROVISIONING, build(BuildOptions.defaults())) == [], "run `stadtpuls dashboards build`"


def test_build_is_deterministic_and_has_the_four_dashboards() -> None:
    assert build() == build()
    assert set(IDS) == {"stadtpuls-waste", "stadtpuls-parking", "stadtpuls-buses", "stadtpuls-fleet"}


def test_write_replaces_changed_and_removes_unknown_dashboards(tmp_path) -> None:
    files = build()
    assert sorted(write(tmp_path, files)) == sorted(files)
    (tmp_path / DASHBOARD_DIR / "stadtpuls-waste.json").write_text("{}")
    (tmp_path / DASHBOARD_DIR / "old.json").write_text("{}")
    assert stale(tmp_path, files) == [f"{DASHBOARD_DIR}/stadtpuls-waste.json", f"{DASHBOARD_DIR}/old.json"]
    write(tmp_path, files)
    assert stale(tmp_path, files) == []
    assert not (tmp_path / DASHBOARD_DIR / "old.json").exists()


def test_datasource_has_fixed_uid_and_credentials_only_from_the_environment() -> None:
    assert DATASOURCE["uid"] == "stadtpuls-db"
    assert DATASOURCE["type"] == "grafana-postgresql-datasource"
    assert DATASOURCE["jsonData"]["timescaledb"] is True
    for key in ("url", "user"):
        assert re.fullmatch(r"\$__env\{[A-Z_]+\}", DATASOURCE[key])
    assert set(DATASOURCE["secureJsonData"]) == {"password"}
    assert re.fullmatch(r"\$__env\{[A-Z_]+\}", DATASOURCE["secureJsonData"]["password"])
    assert "password" not in DATASOURCE.get("jsonData", {})
    assert re.fullmatch(r"\$__env\{[A-Z_]+\}", PROMETHEUS["url"])
    assert len({d["uid"] for d in SOURCES}) == len(SOURCES) and sum(d.get("isDefault", False) for d in SOURCES) == 1


def test_plain_postgresql_build_turns_timescaledb_off() -> None:
    options = BuildOptions(**{**BuildOptions.defaults().__dict__, "timescaledb": False})
    sources = yaml.safe_load(build(options)[DATASOURCE_FILE])["datasources"]
    assert next(d for d in sources if d["uid"] == "stadtpuls-db")["jsonData"]["timescaledb"] is False


def test_provider_loads_the_json_folder() -> None:
    provider = yaml.safe_load((PROVISIONING / PROVIDER_FILE).read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"].endswith("/provisioning/" + DASHBOARD_DIR)


@pytest.mark.parametrize("dash", DASHBOARDS, ids=IDS)
def test_dashboard_is_valid_grafana_json(dash: dict[str, Any]) -> None:
    assert dash["schemaVersion"] == SCHEMA_VERSION
    assert "id" not in dash, "provisioned dashboards carry a uid, not an id"
    assert 0 < len(dash["uid"]) <= 40 and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= set(g) and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["title"] and panel["description"] and panel["targets"]
    titles = [p["title"] for p in dash["panels"]]
    assert len(titles) == len(set(titles))


@pytest.mark.parametrize("dash", DASHBOARDS, ids=IDS)
def test_every_panel_target_and_variable_uses_the_provisioned_datasource(dash: dict[str, Any]) -> None:
    expected = {"type": DATASOURCE["type"], "uid": DATASOURCE["uid"]}
    prometheus = {"type": "prometheus", "uid": PROMETHEUS["uid"]}
    for panel, target in _targets(dash):
        wanted = expected if "rawSql" in target else prometheus
        assert panel["datasource"] == wanted, panel["title"]
        assert target["datasource"] == wanted, panel["title"]
        if "rawSql" in target:
            assert target["rawQuery"] and target["format"] in ("table", "time_series")
        else:
            assert target["expr"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == expected


@pytest.mark.parametrize("dash", DASHBOARDS, ids=IDS)
def test_referenced_variables_are_defined(dash: dict[str, Any]) -> None:
    defined = {v["name"] for v in dash["templating"]["list"]}
    used: set[str] = set()
    for _, target in _targets(dash):
        used |= referenced_variables(target.get("rawSql") or target["expr"])
    for var in dash["templating"]["list"]:
        used |= referenced_variables(var.get("query", "")) if var["type"] == "query" else set()
    assert used <= defined
    assert "tz" in defined and next(v for v in dash["templating"]["list"] if v["name"] == "tz")["type"] == "constant"


@pytest.mark.parametrize("dash", DASHBOARDS, ids=IDS)
def test_hourly_or_coarser_buckets_read_the_hourly_aggregates(dash: dict[str, Any]) -> None:
    for panel, target in _targets(dash):
        sql = target.get("rawSql", "")
        if "$__timeGroupAlias" not in sql:
            continue
        hourly = parse_interval(panel.get("interval", "1s")).total_seconds() >= 3600
        raw = [t for t in RAW_TABLES if re.search(rf"\bFROM {t}\b", sql)]
        assert not (hourly and raw), f"{panel['title']}: hourly buckets from raw {raw}"
        if hourly:
            assert re.search(r"\bFROM \w+_hourly\b", sql), panel["title"]
        assert target["format"] == "time_series"


def test_daily_buckets_use_the_reporting_time_zone() -> None:
    waste = next(d for d in DASHBOARDS if d["uid"] == "stadtpuls-waste")
    pickups = next(p for p in waste["panels"] if p["title"] == "Pickups per day")["targets"][0]["rawSql"]
    assert "date_trunc('day', bucket AT TIME ZONE '$tz') AT TIME ZONE '$tz'" in pickups
    for dash in DASHBOARDS:
        assert dash["timezone"] == BuildOptions.defaults().tz
