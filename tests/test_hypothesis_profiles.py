"""Hypothesis's example counts: ``make test`` (and CI, which runs it) uses the ``full`` profile, Hypothesis's own
counts and every count a test sets; ``make test-fast`` the ``dev`` profile, a share of them."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from .conftest import DEV_PROFILE, FULL_PROFILE, examples

REPO = Path(__file__).resolve().parents[1]


def test_the_full_profile_keeps_hypothesis_counts_and_the_tests_own() -> None:
    assert settings.get_profile(FULL_PROFILE).max_examples == settings.get_profile("default").max_examples
    assert [examples(n, FULL_PROFILE) for n in (1, 30, 150, 1500)] == [1, 30, 150, 1500]


def test_the_dev_profile_runs_fewer_examples_and_at_least_one() -> None:
    full, dev = settings.get_profile(FULL_PROFILE).max_examples, settings.get_profile(DEV_PROFILE).max_examples
    assert 1 <= dev < full
    assert examples(1500, DEV_PROFILE) == 1500 * dev // full < 1500
    assert examples(1, DEV_PROFILE) == 1


def _profile_of(target: str) -> str:
    """The Hypothesis profile the pytest run of ``make target`` loads (its command, collecting this file only)."""
    make = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=True, timeout=30)
    command = next(shlex.split(line) for line in make.stdout.splitlines() if " -m pytest" in line)
    args = command[command.index("pytest") + 1 :]
    if "-n" in args:  # one process is enough to read the header
        args[args.index("-n") + 1] = "0"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--collect-only", "-v", "-p", "no:cacheprovider", __file__],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("hypothesis profile"))


@pytest.mark.slow  # a pytest collection in a process of its own
@pytest.mark.parametrize(("target", "profile"), [("test", FULL_PROFILE), ("test-fast", DEV_PROFILE)])
def test_make_targets_load_their_profile(target: str, profile: str) -> None:
    assert _profile_of(target) == profile
