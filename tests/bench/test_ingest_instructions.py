"""``bench.ingest_instructions``: the counted driver stores every uplink, and callgrind's parts map to its sections."""

from __future__ import annotations

import pickle
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the benchmarks are a folder of the repository, not an installed package
from bench import ingest_instructions as cg  # noqa: E402


def test_parts_are_read_in_order_and_the_last_file_is_left_out(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out.0"
    out.write_text("events: Ir\ntotals: 5\n")  # what followed the last mark: not a section
    (tmp_path / "callgrind.out.0.1").write_text("events: Ir\nsummary: 1200\ntotals: 1200\n")
    (tmp_path / "callgrind.out.0.2").write_text("events: Ir\ntotals: 34\n")
    (tmp_path / "callgrind.out.0.4").write_text("events: Ir\ntotals: 99\n")  # after a gap: not read
    assert cg.read_parts(out) == [1200, 34]


def test_module_falls_back_to_the_layout_before_the_package() -> None:
    assert cg._module("stadtpuls.no_such_module", "json").__name__ == "json"
    with pytest.raises(ModuleNotFoundError):
        cg._module("stadtpuls.no_such_module", "no_such_top_level_module")


def test_driver_stores_every_uplink_through_the_worker(
    pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without valgrind: the child hands the batches to the worker, the parent checks that the fresh database holds
    every uplink and no dead letter, and drops it; the inputs written are read back by a second call that runs no
    child (``--repeat 0``: no database either, whose drop waits for a checkpoint)."""
    monkeypatch.setenv("STADTPULS_BENCH_DATABASE_URL", pg_server_url)
    monkeypatch.chdir(REPO)  # the driver changes into the tree; the test's directory comes back
    inputs = tmp_path / "inputs.pickle"
    argv = [
        "--native",
        "--devices",
        "20",
        "--count",
        "600",
        "--batch-size",
        "200",
        "--codec-n",
        "300",
        "--codec",
        "nwave/nps405",
    ]
    assert cg.main([*argv, "--inputs", str(inputs)]) == 0
    built = capsys.readouterr().out
    assert "inputs built" in built and "run 1:" in built and "the driver ran without valgrind" in built
    saved = pickle.loads(inputs.read_bytes())
    assert len(saved["messages"]) == 600 and list(saved["codecs"]) == ["nwave/nps405"]
    assert cg.main([*argv, "--inputs", str(inputs), "--repeat", "0"]) == 0
    again = capsys.readouterr().out
    assert f"read from {inputs}" in again and "run 1:" not in again
    assert built.split("digests ")[1].splitlines()[0] == again.split("digests ")[1].splitlines()[0]


@pytest.mark.slow
@pytest.mark.timeout(900)  # python's start-up under valgrind alone takes minutes on a loaded machine
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_counts_under_callgrind_per_section(
    pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STADTPULS_BENCH_DATABASE_URL", pg_server_url)
    monkeypatch.setenv("STADTPULS_BENCH_DIR", str(tmp_path / "reports"))
    monkeypatch.chdir(REPO)
    argv = ["--devices", "20", "--count", "400", "--batch-size", "200", "--codec-n", "2000", "--codec", "nwave/nps405"]
    assert cg.main([*argv, "--json", str(tmp_path / "counts.json")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("ingest ", "envelopes ", "codec "))}
    assert set(rows) == {"ingest", "envelopes", "codec"}
    per_uplink = float(rows["ingest"].split("  ")[-1].split(" per ")[0].replace(",", ""))
    assert 10_000 < per_uplink < 10_000_000  # tens to hundreds of thousands of instructions per uplink
