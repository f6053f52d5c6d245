"""``python -m bench [NAME ...]`` (what ``make bench`` runs): every benchmark ``bench/<name>.py``, then one table.

Each benchmark runs in its own process (``python -m bench.<name>``), one after the other, with its output shown as
it comes. A missed target is reported (``MISSED``) and the next benchmark runs all the same; a benchmark that exits
non-zero or writes no report (:mod:`bench._report`) has ``crashed``. The table at the end lists every benchmark
with its status (met, MISSED, measured: no target, crashed), its key figures and its duration; the exit status is
1 only if one crashed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ._report import ARTIFACTS, Report, read

__all__ = ["CRASHED", "Outcome", "benchmarks", "exit_code", "outcome", "summary"]

BENCH_DIR = Path(__file__).resolve().parent
CRASHED = "crashed"
MAX_FIGURES = 3


def benchmarks() -> list[str]:
    """The benchmark modules' names (``bench/<name>.py``, not the private ``_*.py`` helpers)."""
    return sorted(p.stem for p in BENCH_DIR.glob("[a-z]*.py"))


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str
    seconds: float
    figures: str


def outcome(name: str, returncode: int, seconds: float, report: Report | None) -> Outcome:
    """The summary row of one run: crashed when it failed or reported nothing, else its report's status."""
    if returncode != 0 or report is None:
        why = f"exit status {returncode}" if returncode != 0 else "no report written"
        return Outcome(name, CRASHED, seconds, why)
    parts = [f.text() for f in report.figures[:MAX_FIGURES]]
    if report.targets:
        missed = [t.what for t in report.targets if not t.met]
        met = len(report.targets) - len(missed)
        parts.append(f"targets met {met}/{len(report.targets)}" + (f" (missed: {', '.join(missed)})" if missed else ""))
    return Outcome(name, report.status, seconds, "; ".join(parts))


def summary(outcomes: list[Outcome]) -> str:
    """The table of all benchmarks, one row each."""
    header = ("benchmark", "status", "duration", "key figures")
    rows = [(f"bench.{o.name}", o.status, f"{o.seconds:.0f} s", o.figures) for o in outcomes]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(3)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}" for r in [header, *rows]]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def exit_code(outcomes: list[Outcome]) -> int:
    return 1 if any(o.status == CRASHED for o in outcomes) else 0


def run(name: str, directory: Path) -> Outcome:
    report_path = directory / f"{name}.json"
    report_path.unlink(missing_ok=True)  # a report left from an earlier run must not stand in for this one
    print(f"== bench.{name}", flush=True)
    env = {**os.environ, "STADTPULS_BENCH_DIR": str(directory)}
    start = time.monotonic()
    returncode = subprocess.call([sys.executable, "-m", f"bench.{name}"], env=env, cwd=BENCH_DIR.parent)
    seconds = time.monotonic() - start
    print(flush=True)
    return outcome(name, returncode, seconds, read(report_path))


def main(argv: list[str] | None = None) -> int:
    known = benchmarks()
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run every benchmark, then one summary table.")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these ({', '.join(known)})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)} (there are: {', '.join(known)})")
    outcomes = [run(name, ARTIFACTS) for name in args.names or known]
    print(summary(outcomes))
    return exit_code(outcomes)


if __name__ == "__main__":
    raise SystemExit(main())
