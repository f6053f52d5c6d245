"""The ground truth: one JSON object per sensor measurement (and per injected bad message), then a summary.

Measurement lines::

    {"t": "2025-03-03T06:00:01.123456Z",  # when it was measured (the network server's true receive time)
     "dev_eui": "24e124...", "site_id": "bin-0001", "kind": "bin", "codec": "milesight-iot/em310-udl",
     "lns": "tts", "f_port": 85, "f_cnt": 17, "bytes_hex": "0175...",  # the bytes as sent
     "quantities": {"distance_mm": 812.0, "fill_pct": 42.3, ...},  # what the hub must store for it
     "dedup": "...",  # ChirpStack deduplicationId, or TTS application/device/session_key_id/f_cnt
     "faults": ["skew"], "skew_s": -12.5,  # only with a skew: the time written is t + skew_s
     ...}  # model facts: stop_id, lot_id, event, true_level_pct, lat, lon, onboard

Lines of injected messages have ``kind`` ``unknown`` or ``malformed`` and ``site_id`` null. A measurement whose
faults include ``gaps`` never reached the broker, one with ``garbage`` carries undecodable bytes (its
``quantities`` are still what the sensor measured). The last line is ``{"summary": {...}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["TruthWriter", "read_truth"]


class TruthWriter:
    """Collects truth lines in memory (``lines``) and/or writes them to ``path``."""

    def __init__(self, path: str | Path | None = None, *, keep: bool = False) -> None:
        self.keep = keep
        self.lines: list[dict[str, Any]] = []
        self._fh: IO[bytes] | None = open(path, "wb") if path else None  # noqa: SIM115 - closed in close()
        self.count = 0

    def write(self, line: dict[str, Any]) -> None:
        self.count += 1
        if self.keep:
            self.lines.append(line)
        if self._fh is not None:
            self._fh.write(orjson.dumps(line) + b"\n")

    def close(self, summary: dict[str, Any]) -> None:
        if self.keep:
            self.lines.append({"summary": summary})
        if self._fh is not None:
            self._fh.write(orjson.dumps({"summary": summary}) + b"\n")
            self._fh.close()
            self._fh = None


def read_truth(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The measurement lines and the summary of a truth file."""
    lines: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    with open(path, "rb") as fh:
        for raw in fh:
            obj = orjson.loads(raw)
            if "summary" in obj and len(obj) == 1:
                summary = obj["summary"]
            else:
                lines.append(obj)
    return lines, summary
