"""``stadtpuls dashboards towns``: one Grafana organisation per town, its datasource logging in as the town's
reader role, the same dashboards; the files parsed and cross-checked with the dashboards and the hub's files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from stadtpuls.cli import main
from stadtpuls.dashboards.build import DASHBOARD_DIR, DATASOURCE_FILE, PROVIDER_FILE, PROVISIONING
from stadtpuls.tenant_roles import ensure_town_reader, reader_role

HUB_SOURCES = yaml.safe_load((PROVISIONING / DATASOURCE_FILE).read_text())["datasources"]
HUB_PROVIDER = yaml.safe_load((PROVISIONING / PROVIDER_FILE).read_text())["providers"][0]
DASHBOARDS = [json.loads(p.read_text()) for p in sorted((PROVISIONING / DASHBOARD_DIR).glob("*.json"))]


@pytest.fixture
def towns(clean_db: str) -> Iterator[dict[str, str]]:
    """Three tenants: two with a reader role (key -> slug), one without; the roles dropped after."""
    tag = uuid.uuid4().hex[:6]
    slugs = {key: f"{key}-{tag}" for key in ("nord", "sued", "west")}
    with psycopg.connect(clean_db) as conn:
        for key, slug in slugs.items():
            conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s)", (slug, key.title() + "stadt"))
        for key in ("nord", "sued"):
            ensure_town_reader(conn, slugs[key], f"pw-{key}")
    yield slugs
    with psycopg.connect(clean_db, autocommit=True) as conn:
        for slug in slugs.values():
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(reader_role(slug))))


def _run(db: str, out: Path, *orgs: str) -> int:
    args = ["dashboards", "towns", "--out", str(out), "--database-url", db]
    for org in orgs:
        args += ["--org", org]
    return main(args)


def _load(out: Path, rel: str) -> Any:
    return yaml.safe_load((out / rel).read_text())


def _dashboard_uids() -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                found.add(node["datasource"]["uid"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for dash in DASHBOARDS:
        walk(dash)
    return found


def test_each_town_gets_its_org_its_role_and_the_same_dashboards(
    clean_db: str, towns: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nord, sued, west = towns["nord"], towns["sued"], towns["west"]
    assert _run(clean_db, tmp_path, f"{nord}=2", f"{sued}=3") == 0
    captured = capsys.readouterr()
    assert f"{west}: no reader role yet (stadtpuls tenants grafana-role {west})" in captured.err
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(f"{d}/town-{s}.yaml" for d in ("datasources", "dashboards") for s in (nord, sued))
    hub_db = next(d for d in HUB_SOURCES if d["uid"] == "stadtpuls-db")
    sources = [(1, d) for d in HUB_SOURCES]  # the hub's file names no orgId: Grafana's org 1
    providers = [(1, HUB_PROVIDER)]
    for slug, org in ((nord, 2), (sued, 3)):
        (ds,) = _load(tmp_path, f"datasources/town-{slug}.yaml")["datasources"]
        (pv,) = _load(tmp_path, f"dashboards/town-{slug}.yaml")["providers"]
        assert ds["orgId"] == pv["orgId"] == org
        assert ds["user"] == reader_role(slug) and ds["user"] != hub_db["user"]
        password_env = "GRAFANA_TOWN_" + slug.upper().replace("-", "_") + "_DB_PASSWORD"
        assert ds["secureJsonData"] == {"password": f"$__env{{{password_env}}}"}
        assert "pw-" not in (tmp_path / f"datasources/town-{slug}.yaml").read_text()  # no secret in the file
        same = {k: v for k, v in ds.items() if k not in ("orgId", "user", "secureJsonData")}
        assert same == {k: v for k, v in hub_db.items() if k not in ("user", "secureJsonData")}
        assert {k: v for k, v in pv.items() if k not in ("orgId", "name")} == {
            k: v for k, v in HUB_PROVIDER.items() if k not in ("orgId", "name")
        }
        sources.append((org, ds))
        providers.append((org, pv))
        assert f"{slug}: org {org} as {reader_role(slug)}, password in ${password_env}" in captured.out
    with psycopg.connect(clean_db) as conn:
        roles = dict(conn.execute("SELECT slug, db_role FROM tenants WHERE db_role IS NOT NULL").fetchall())
    assert roles == {nord: reader_role(nord), sued: reader_role(sued)}
    # Grafana's rules across all files: (org, uid) and (org, name) unique, one default per org, providers named once
    assert len({(o, d["uid"]) for o, d in sources}) == len(sources)
    assert len({(o, d["name"]) for o, d in sources}) == len(sources)
    for org in {o for o, _ in sources}:
        assert sum(bool(d.get("isDefault")) for o, d in sources if o == org) == 1
    assert len({p["name"] for _, p in providers}) == len(providers)
    # the dashboards name the database by a uid each town's org provides; Prometheus is the hub's only
    assert _dashboard_uids() == {"stadtpuls-db", "stadtpuls-prometheus"}
    for org in (2, 3):
        assert {d["uid"] for o, d in sources if o == org} == {"stadtpuls-db"}


def test_a_town_that_lost_its_role_loses_its_files(clean_db: str, towns: dict[str, str], tmp_path: Path) -> None:
    nord, sued = towns["nord"], towns["sued"]
    assert _run(clean_db, tmp_path, f"{nord}=2", f"{sued}=3") == 0
    before = (tmp_path / f"datasources/town-{nord}.yaml").stat().st_mtime_ns
    (tmp_path / "datasources" / "other.yaml").write_text("apiVersion: 1\n")  # not ours: kept
    with psycopg.connect(clean_db) as conn:
        conn.execute("UPDATE tenants SET db_role = NULL WHERE slug = %s", (sued,))
    assert _run(clean_db, tmp_path, f"{nord}=2") == 0
    assert sorted(p.name for p in (tmp_path / "datasources").iterdir()) == ["other.yaml", f"town-{nord}.yaml"]
    assert sorted(p.name for p in (tmp_path / "dashboards").iterdir()) == [f"town-{nord}.yaml"]
    assert (tmp_path / f"datasources/town-{nord}.yaml").stat().st_mtime_ns == before  # unchanged: not rewritten


@pytest.mark.parametrize(
    ("orgs", "message"),
    [
        (["{nord}=2"], "no Grafana organisation given for {sued}"),
        (["{nord}=2", "{sued}=2"], "{nord} and {sued} share org 2"),
        (["{nord}=1", "{sued}=3"], "org 1 is the hub's own (every town): give {nord} its own org"),
        (["{nord}=2", "{sued}=3", "{west}=4"], "no tenant with a reader role: {west}"),
        (["{nord}=2", "{nord}=4", "{sued}=3"], "{nord} is given two organisations"),
    ],
)
def test_org_ids_are_checked_and_nothing_is_written(
    clean_db: str,
    towns: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    orgs: list[str],
    message: str,
) -> None:
    assert _run(clean_db, tmp_path, *(o.format(**towns) for o in orgs)) == 2
    assert message.format(**towns) in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_malformed_org_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dashboards", "towns", "--out", str(tmp_path), "--org", "nord=second"])
    assert exit_.value.code == 2
    assert "'nord=second' is not SLUG=ORG_ID" in capsys.readouterr().err
