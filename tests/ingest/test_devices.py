"""``stadtpuls devices import`` and ``stadtpuls devices list`` against the real database."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stadtpuls.cli import main

from .conftest import scalar

YAML = """
sites:
  - {site_id: lot-a, kind: lot, capacity: 10}
  - {site_id: space-a1, kind: space, parent_id: lot-a}
  - {site_id: bin-7, kind: bin, depth_mm: 1100, full_mm: 150, waste_type: paper}
devices:
  - {dev_eui: "A1B2C3D4E5F60718", codec: nwave/nps405, site_id: space-a1}
  - {dev_eui: "0011223344556677", codec: milesight-iot/em310-udl, site_id: bin-7, params: {depth_mm: 1000}}
"""

CSV = """dev_eui,codec,name,site_id,site_kind,site_parent_id,param_depth_mm
0011223344556688,milesight-iot/em310-udl,Bin 8,bin-8,bin,,950
00112233445566zz,milesight-iot/em310-udl,broken,bin-9,bin,,
0011223344556699,no-such/codec,unknown codec,bin-9,bin,,
"""


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str) -> int:
    monkeypatch.setenv("STADTPULS_DATABASE_URL", url)
    return main(list(argv))


def test_import_registers_sites_and_devices_idempotently(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    assert _cli(monkeypatch, clean_db, "devices", "import", str(path)) == 0
    assert "devices created 2" in capsys.readouterr().out
    assert scalar(clean_db, "SELECT count(*) FROM devices") == 2
    assert scalar(clean_db, "SELECT site_id FROM devices WHERE dev_eui = 'a1b2c3d4e5f60718'") == "space-a1"
    assert _cli(monkeypatch, clean_db, "devices", "import", "--json", str(path)) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["devices_created"] == 0 and report["errors"] == []
    assert scalar(clean_db, "SELECT count(*) FROM devices") == 2


def test_dry_run_reports_and_writes_nothing(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    assert _cli(monkeypatch, clean_db, "devices", "import", "--dry-run", str(path)) == 0
    out = capsys.readouterr().out
    assert out.startswith("dry run, nothing written") and "devices created 2" in out
    assert scalar(clean_db, "SELECT count(*) FROM devices") == 0


def test_csv_rows_with_errors_are_reported_and_the_rest_imported(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(CSV)
    assert _cli(monkeypatch, clean_db, "devices", "import", str(path)) == 1
    out = capsys.readouterr().out
    assert "dev_eui" in out and "codec" in out
    assert scalar(clean_db, "SELECT count(*) FROM devices") == 1
    assert scalar(clean_db, "SELECT params->>'depth_mm' FROM devices") == "950"


def test_unreadable_file_exits_2(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(monkeypatch, clean_db, "devices", "import", str(tmp_path / "missing.yaml")) == 2
    assert "cannot read" in capsys.readouterr().err


def test_list_shows_devices_with_their_site(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    _cli(monkeypatch, clean_db, "devices", "import", str(path))
    capsys.readouterr()
    assert _cli(monkeypatch, clean_db, "devices", "list", "--json") == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert [(r["dev_eui"], r["site_id"], r["kind"]) for r in rows] == [
        ("0011223344556677", "bin-7", "bin"),
        ("a1b2c3d4e5f60718", "space-a1", "space"),
    ]
    assert _cli(monkeypatch, clean_db, "devices", "list") == 0
    assert "2 devices" in capsys.readouterr().out


def _add_tenant(url: str, slug: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s)", (slug, slug.title()))


def test_import_with_tenant_puts_every_site_and_device_in_that_town(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_tenant(clean_db, "nordstadt")
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    assert _cli(monkeypatch, clean_db, "devices", "import", "--tenant", "nordstadt", str(path)) == 0
    assert scalar(clean_db, "SELECT count(*) FROM sites WHERE tenant = 'nordstadt'") == 3
    assert scalar(clean_db, "SELECT count(*) FROM devices WHERE tenant = 'nordstadt'") == 2
    assert scalar(clean_db, "SELECT count(*) FROM sites WHERE tenant <> 'nordstadt'") == 0
    capsys.readouterr()
    assert _cli(monkeypatch, clean_db, "devices", "list", "--json", "--tenant", "nordstadt") == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert {r["tenant"] for r in rows} == {"nordstadt"} and len(rows) == 2
    assert _cli(monkeypatch, clean_db, "devices", "list", "--json", "--tenant", "default") == 0
    assert orjson.loads(capsys.readouterr().out) == []


def test_import_naming_another_towns_ids_is_refused_whole_and_names_them(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_tenant(clean_db, "nordstadt")
    _add_tenant(clean_db, "suedstadt")
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    assert _cli(monkeypatch, clean_db, "devices", "import", "--tenant", "nordstadt", str(path)) == 0
    other = tmp_path / "sued.yaml"
    other.write_text(
        """
sites:
  - {site_id: sued-lot, kind: lot, capacity: 5}
  - {site_id: bin-7, kind: bin, depth_mm: 1100, full_mm: 150, waste_type: glass}
  - {site_id: sued-space, kind: space, parent_id: lot-a}
devices:
  - {dev_eui: "A1B2C3D4E5F60718", codec: nwave/nps405, site_id: sued-lot}
  - {dev_eui: "0011223344556601", codec: nwave/nps405, site_id: space-a1}
  - {dev_eui: "0011223344556602", codec: nwave/nps405, site_id: sued-lot}
"""
    )
    capsys.readouterr()
    assert _cli(monkeypatch, clean_db, "devices", "import", "--tenant", "suedstadt", str(other)) == 1
    out = capsys.readouterr().out
    assert out.startswith("refused, nothing written"), out
    assert "site 'bin-7' belongs to tenant 'nordstadt'" in out and "prefix such as 'suedstadt-'" in out
    assert "parent site 'lot-a' belongs to tenant 'nordstadt'" in out
    assert "device a1b2c3d4e5f60718 belongs to tenant 'nordstadt'" in out
    assert "site 'space-a1' belongs to tenant 'nordstadt'" in out
    assert out.count("\n  ") == 4  # exactly the four rows that touch the other town
    # nothing of the file, not even its own new rows, and the other town's rows unchanged
    assert scalar(clean_db, "SELECT count(*) FROM sites WHERE tenant = 'suedstadt'") == 0
    assert scalar(clean_db, "SELECT count(*) FROM devices WHERE tenant = 'suedstadt'") == 0
    assert scalar(clean_db, "SELECT waste_type FROM sites WHERE site_id = 'bin-7'") == "paper"
    assert scalar(clean_db, "SELECT site_id FROM devices WHERE dev_eui = 'a1b2c3d4e5f60718'") == "space-a1"


def test_import_into_an_unknown_tenant_is_a_clear_error(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    assert _cli(monkeypatch, clean_db, "devices", "import", "--tenant", "atlantis", str(path)) == 2
    assert "no tenant 'atlantis'" in capsys.readouterr().err
    assert scalar(clean_db, "SELECT count(*) FROM sites") == 0
