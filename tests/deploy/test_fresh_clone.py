"""A fresh clone is enough: the suite reads nothing outside the repository.

The slow test clones the committed HEAD of this checkout into an empty temporary directory (nothing beside it),
collects the whole suite there and runs the test modules that read ``tests/data``, with the clone first on the
import path, so the code and data under test are the clone's. Running the whole suite inside a test would be too
heavy; collection imports every test module, which is where a missing file outside the repository shows first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
# Built from parts so that this file does not match itself.
FORBIDDEN = ("../" + "shared", "STADTPULS_" + "SHARED_DIR", "/work/" + "shared")
DATA_DIRS = re.compile(r"codec-vectors|lns-formats")
BROWSER_AND_QUICK_MODULES = ("tests/api/test_pages_browser.py", "tests/bench/test_runner.py")


def _files_to_check() -> list[Path]:
    """Every test, benchmark and script file of the repository."""
    files = [p for p in TESTS.rglob("*") if p.is_file() and p.suffix in (".py", ".cfg", ".ini", ".toml", ".sh")]
    files += [p for p in (REPO / "bench").rglob("*.py")]
    files += [p for p in (REPO / ".ci").rglob("*") if p.is_file()]
    files += [REPO / "Makefile", REPO / "pyproject.toml", REPO / "Dockerfile", REPO / "docker-compose.yml"]
    files += [p for p in (REPO / "deploy").rglob("*") if p.is_file() and p.suffix in ("", ".sh", ".py")]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


def test_no_test_benchmark_or_script_looks_outside_the_repository() -> None:
    files = _files_to_check()
    assert len(files) > 50
    offenders = {
        str(p.relative_to(REPO)): [f for f in FORBIDDEN if f in p.read_text(errors="replace")]
        for p in files
        if any(f in p.read_text(errors="replace") for f in FORBIDDEN)
    }
    assert offenders == {}


def _data_test_modules(root: Path) -> list[str]:
    """The test modules that read ``tests/data`` (codec vectors, network-server samples)."""
    return sorted(
        str(p.relative_to(root))
        for p in (root / "tests").rglob("test_*.py")
        if DATA_DIRS.search(p.read_text()) and p.name != Path(__file__).name
    )


def _clean_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STADTPULS_", "PYTEST_", "PYTHON"))}
    for keep in ("STADTPULS_TEST_DATABASE_URL", "STADTPULS_TEST_MQTT_URL"):  # the services, not the data
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env["PYTHONPATH"] = str(clone)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _in_clone(clone: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` of this venv in the clone, with the clone first on the import path."""
    return subprocess.run(
        [sys.executable, *args], cwd=clone, env=_clean_env(clone), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    head = subprocess.run([git, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    target = tmp_path_factory.mktemp("fresh") / "stadtpuls"
    subprocess.run([git, "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)], check=True)
    subprocess.run([git, "-C", str(target), "checkout", "--quiet", head.stdout.strip()], check=True)
    assert sorted(p.name for p in target.parent.iterdir()) == ["stadtpuls"]  # nothing beside it
    return target


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_clone_imports_its_own_code(clone: Path) -> None:
    probe = "import stadtpuls.api.main, stadtpuls.ingest; print(stadtpuls.ingest.__file__)"
    out = _in_clone(clone, "-c", probe, timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).is_relative_to(clone)


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_whole_suite_collects_in_a_fresh_clone(clone: Path) -> None:
    out = _in_clone(clone, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    collected = re.search(r"(\d+) tests? collected", out.stdout)
    assert collected and int(collected.group(1)) > 500, out.stdout[-2000:]
    assert "error" not in out.stdout.splitlines()[-1].lower()


@pytest.mark.slow
@pytest.mark.timeout(1300)
def test_tests_reading_the_data_files_pass_in_a_fresh_clone(clone: Path) -> None:
    modules = _data_test_modules(clone)
    assert "tests/ingest/codecs/test_vectors.py" in modules and "tests/ingest/test_envelopes.py" in modules
    selection = ("-m", "not slow and not browser", *modules)
    out = _in_clone(clone, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection, timeout=1200)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert re.search(r"\d+ passed", out.stdout.splitlines()[-1]), out.stdout[-2000:]


@pytest.mark.slow  # a pytest run in a process of its own
def test_without_chromium_the_browser_tests_are_skipped_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["STADTPULS_TEST_CHROMIUM"] = str(tmp_path / "no-chromium")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", *BROWSER_AND_QUICK_MODULES],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    summary = out.stdout.splitlines()
    skipped = [line for line in summary if line.startswith("SKIPPED")]
    assert len(skipped) == 1, skipped
    assert "make browser" in skipped[0] and "chromium" in skipped[0]
    counted = re.match(r"SKIPPED (\d+) browser tests", skipped[0])
    assert counted and int(counted.group(1)) >= 10, skipped[0]
    assert f"{counted.group(1)} deselected" in summary[-1]
    assert re.search(r"\d+ passed", summary[-1]) and "error" not in summary[-1], summary[-1]
