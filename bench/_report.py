"""What a benchmark reports: its key figures and each target, met or MISSED, on stdout and in a JSON file.

Every ``bench/<name>.py`` builds one :class:`Report`, adds its headline figures and checks its targets with
:meth:`Report.target` (which prints ``target ...: met`` or ``target ...: MISSED``), and calls :meth:`Report.write`
at the end: ``artifacts/bench/<name>.json`` is what the summary of ``python -m bench`` (``make bench``) reads. A
missed target is a result, not a failure: the benchmark still exits 0, so the others run.

The file::

    {"name": "codecs", "status": "met" | "MISSED" | "measured",
     "figures": [{"label": "...", "value": 1.5e7, "unit": "payloads/s"}, ...],
     "targets": [{"what": "...", "met": true}, ...]}
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ARTIFACTS", "MET", "MEASURED", "MISSED", "Figure", "Report", "Target", "read", "status_of"]

ARTIFACTS = Path(os.environ.get("STADTPULS_BENCH_DIR", Path(__file__).resolve().parents[1] / "artifacts" / "bench"))
MET, MISSED, MEASURED = "met", "MISSED", "measured"  # "measured": a benchmark without a target


@dataclass(frozen=True)
class Figure:
    label: str
    value: float
    unit: str = ""

    def text(self) -> str:
        v = self.value
        number = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return f"{self.label} {number}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class Target:
    what: str
    met: bool


def status_of(targets: list[Target]) -> str:
    if not targets:
        return MEASURED
    return MET if all(t.met for t in targets) else MISSED


@dataclass
class Report:
    name: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def figure(self, label: str, value: float, unit: str = "") -> float:
        """Record a headline figure (the summary table shows them in this order)."""
        self.figures.append(Figure(label, float(value), unit))
        return value

    def target(self, what: str, met: bool) -> bool:
        """Record and print whether a target was reached."""
        self.targets.append(Target(what, bool(met)))
        print(f"target {what}: {MET if met else MISSED}")
        return met

    @property
    def status(self) -> str:
        return status_of(self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "figures": [asdict(f) for f in self.figures],
            "targets": [asdict(t) for t in self.targets],
        }

    def write(self, directory: Path | None = None) -> Path:
        directory = directory or ARTIFACTS
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.name}.json"
        path.write_bytes(orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2))
        return path


def read(path: Path) -> Report | None:
    """The report a benchmark wrote, or None if the file is missing or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
        return Report(
            data["name"],
            [Figure(f["label"], float(f["value"]), f.get("unit", "")) for f in data["figures"]],
            [Target(t["what"], bool(t["met"])) for t in data["targets"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
