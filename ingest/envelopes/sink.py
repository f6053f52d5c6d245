"""Where the per-format readers put what they found in one message; ``parse_batch`` turns it into columns.

An uplink is appended to :attr:`Sink.rows` as one plain tuple (cheaper than an object per message), in the
field order of :data:`ROW_FIELDS`; readers write it as one literal in three lines (message and frame; radio;
origin and key, kept so by ``# fmt: skip``), and ``parse_batch`` reads fields by name (:data:`INDEX`, ... for
the few it needs per row, ``ROW_FIELDS`` for the columns). Its reading time is resolved afterwards for the
whole batch at once from two candidate timestamp strings and a :class:`TimeRule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .model import EnvelopeError, Ignored, Join, LogEvent, Status
from .timestamps import BAD, OK, OUT_OF_RANGE, parse_times, to_datetime

__all__ = ["INDEX", "LNS", "ROW_FIELDS", "RSSI", "RULE", "SNR", "T1", "T2", "Sink", "TimeRule"]

#: Layout of an uplink row tuple. ``t1``/``t2`` are candidate timestamp strings (or None), ``rule`` a TimeRule.
ROW_FIELDS = (
    "index",
    "t1",
    "t2",
    "rule",
    "dev_eui",
    "lns_device_id",
    "f_cnt",
    "f_cnt_present",
    "f_port",
    "payload",
    "rssi",
    "snr",
    "gateways",
    "gateway_id",
    "dr",
    "sf",
    "bandwidth",
    "frequency",
    "lns",
    "dedup_key",
    "simulated",
    "decoded",
    "app_id",
    "session",
)
#: positions in the row tuple of the fields read before the rows become columns
INDEX, T1, T2, RULE, RSSI, SNR, LNS = (ROW_FIELDS.index(f) for f in ("index", "t1", "t2", "rule", "rssi", "snr", "lns"))


@dataclass(frozen=True)
class TimeRule:
    """How an uplink's reading time follows from its two candidates ``t1`` and ``t2``.

    * ``fallback``: t1, else t2, else the hub's receive time (TTS: NS then AS receive time).
    * ``drift``: t1 unless t2 exists and differs by more than ``max_drift_s`` or t1 is out of range, then t2;
      else the hub time (ChirpStack v4: ``time`` checked against the gateway's ``nsTime``).
    * ``gateway``: t1, else t2 when in range, else the hub time (ChirpStack v3: ``publishedAt``, then the
      gateway's clock, which may be wrong).

    An unparsable candidate rejects the message; so does an out-of-range one that the rule cannot replace.
    """

    kind: str
    t1_name: str
    t2_name: str
    max_drift_s: float = 30.0


@dataclass
class Sink:
    hub_time: float
    hub_iso: str
    store_simulated: bool
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    logs: list[LogEvent] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)

    def event_time(self, lns: str, *candidates: tuple[str, Any]) -> datetime:
        """Time of a side event: the first present candidate ``(path, value)``, else the hub time."""
        times, status = parse_times([value for _, value in candidates])
        for (path, _), t, st in zip(candidates, times, status, strict=True):
            if st == OK:
                return to_datetime(t)
            if st == BAD:
                raise EnvelopeError(f"bad timestamp: {path} is not an RFC 3339 time with offset", lns)
            if st == OUT_OF_RANGE:
                raise EnvelopeError(f"timestamp out of range: {path}", lns)
        return datetime.fromtimestamp(self.hub_time, UTC)
