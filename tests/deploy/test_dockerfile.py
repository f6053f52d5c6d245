"""The hub image's Dockerfile: slim Python, non-root, and ``pip install .`` works from exactly what it copies."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINES = [
    line.strip()
    for line in (REPO / "Dockerfile").read_text().splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]
IGNORED = [p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"]


def _instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in LINES if line.split(None, 1)[0].upper() == name]


def _copied() -> list[str]:
    return [src for args in _instructions("COPY") for src in args.split()[:-1] if not src.startswith("--")]


def test_base_image_is_slim_python_311() -> None:
    assert _instructions("FROM") == ["python:3.11-slim"]


def test_runs_as_a_non_root_user() -> None:
    user = _instructions("USER")[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any("useradd" in line and user in line for line in LINES)
    assert json.loads(_instructions("ENTRYPOINT")[-1]) == ["stadtpuls"]


def test_copies_every_package_the_distribution_installs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip(".*") for p in include}
    # the top-level folders linked into stadtpuls/ (stadtpuls/api -> ../api) are installed from there too
    linked = {path.readlink().name for path in (REPO / "stadtpuls").iterdir() if path.is_symlink()}
    assert {"ingest", "api", "dashboards", "simulators"} <= linked
    packages |= linked
    copied = set(_copied())
    assert packages <= copied, f"not copied: {packages - copied}"
    assert {"pyproject.toml", project["project"]["readme"], *project["project"].get("license-files", [])} <= copied
    for src in copied:
        assert (REPO / src).exists(), src
        assert not any(fnmatch.fnmatch(src, pattern) for pattern in IGNORED), f".dockerignore drops {src}"
    assert {".git", ".venv", "tests"} <= set(IGNORED)


@pytest.mark.slow
@pytest.mark.timeout(360)  # pip has 300 s
def test_pip_builds_the_hub_from_the_copied_files(tmp_path: Path) -> None:
    context = tmp_path / "src"
    context.mkdir()
    for src in _copied():
        (shutil.copytree if (REPO / src).is_dir() else shutil.copy)(
            REPO / src,
            context / src,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / src).is_dir() else {}),
        )
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    wheel = next((tmp_path / "dist").glob("stadtpuls-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "stadtpuls/cli.py",
        "stadtpuls/migrations/0001_core.sql",
        "stadtpuls/ingest/service.py",
        "stadtpuls/api/main.py",
        "stadtpuls/api/static/parking.html",
        "stadtpuls/dashboards/build.py",
        "stadtpuls/dashboards/provisioning/datasources/stadtpuls.yaml",
    ):
        assert needed in names, needed
    assert not any(n.split("/")[0] in ("ingest", "api", "dashboards", "simulators") for n in names)
    assert any(n.endswith("entry_points.txt") for n in names)
