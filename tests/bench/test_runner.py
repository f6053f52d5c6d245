"""``python -m bench``: every benchmark runs, a miss is reported and never stops the others, one summary table."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the benchmarks are a folder of the repository, not an installed package
from bench import __main__ as runner  # noqa: E402
from bench._report import MEASURED, MET, MISSED, Report, read  # noqa: E402


def test_every_benchmark_module_is_run() -> None:
    names = runner.benchmarks()
    assert {"api", "codecs", "envelopes", "history", "ingest", "pickups", "simulate"} <= set(names)
    assert not [n for n in names if n.startswith("_")]


def test_report_prints_met_and_missed_and_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = Report("codecs")
    report.figure("slowest", 3.6, "M payloads/s")
    assert report.target(">= 5 M/s", False) is False
    assert report.target(">= 30x", True) is True
    assert capsys.readouterr().out.splitlines() == ["target >= 5 M/s: MISSED", "target >= 30x: met"]
    path = report.write(tmp_path)
    assert orjson.loads(path.read_bytes())["status"] == MISSED
    assert read(path) == report
    assert read(tmp_path / "absent.json") is None
    (tmp_path / "broken.json").write_text("{")
    assert read(tmp_path / "broken.json") is None


def test_summary_lists_every_benchmark_and_only_a_crash_fails() -> None:
    missed = Report("codecs")
    missed.figure("slowest", 3.6, "M payloads/s")
    missed.target("bosch/tps110 >= 5 M/s and 30x", False)
    missed.target("dragino/ldds75 >= 5 M/s and 30x", True)
    met = Report("simulate")
    met.figure("load mode", 116682, "messages/s")
    met.target(">= 30,000 messages/s", True)
    outcomes = [
        runner.outcome("codecs", 0, 301.2, missed),
        runner.outcome("envelopes", 0, 12.0, Report("envelopes", [], [])),
        runner.outcome("simulate", 0, 88.0, met),
    ]
    assert [o.status for o in outcomes] == [MISSED, MEASURED, MET]
    assert runner.exit_code(outcomes) == 0  # a miss is a result, not a failure
    table = runner.summary(outcomes).splitlines()
    assert table[0].split()[:3] == ["benchmark", "status", "duration"]
    assert len(table) == 2 + len(outcomes)
    codecs_row = next(line for line in table if line.startswith("bench.codecs"))
    assert "MISSED" in codecs_row and "301 s" in codecs_row
    assert "slowest 3.6 M payloads/s" in codecs_row and "targets met 1/2" in codecs_row
    assert "missed: bosch/tps110" in codecs_row
    assert "load mode 116,682 messages/s" in next(line for line in table if line.startswith("bench.simulate"))

    crashed = [*outcomes, runner.outcome("ingest", 1, 5.0, None), runner.outcome("api", 0, 5.0, None)]
    assert [o.status for o in crashed[-2:]] == [runner.CRASHED, runner.CRASHED]
    assert runner.exit_code(crashed) == 1
    assert "exit status 1" in runner.summary(crashed) and "no report written" in runner.summary(crashed)


def test_runner_goes_on_after_a_crash_and_reads_each_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two throwaway benchmark modules in a scratch package: one crashes, the next still runs and reports."""
    pkg = tmp_path / "bench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_report.py").write_text((REPO / "bench" / "_report.py").read_text())
    (pkg / "aaa.py").write_text("raise SystemExit(3)\n")
    (pkg / "bbb.py").write_text(
        "from ._report import Report\n"
        "r = Report('bbb')\nr.figure('speed', 7, 'x')\nr.target('fast', False)\nr.write()\n"
    )
    monkeypatch.setattr(runner, "BENCH_DIR", pkg)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "bbb.json").write_bytes(orjson.dumps(Report("bbb", [], []).to_json()))  # stale: must be replaced
    monkeypatch.setattr(runner, "ARTIFACTS", reports)
    assert runner.main(["aaa", "bbb"]) == 1
    out = capfd.readouterr().out  # the benchmarks' own output comes from their processes
    assert "== bench.aaa" in out and "== bench.bbb" in out and "target fast: MISSED" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("bench.")}
    assert rows == {"bench.aaa": runner.CRASHED, "bench.bbb": MISSED}
