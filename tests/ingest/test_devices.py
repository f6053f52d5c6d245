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
