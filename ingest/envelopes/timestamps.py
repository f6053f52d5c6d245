"""RFC 3339 timestamps of network-server messages, parsed in one vectorised step.

Forms seen in the wild (formats README 1.3, 2.3): ``Z`` (TTS, ChirpStack v3) or ``+00:00`` (ChirpStack v4) suffix,
0 to 9 fraction digits. Both are cut to a naive UTC string and handed to numpy as one array; numpy truncates the
fraction to microseconds (PostgreSQL's resolution). Other offsets take a slow path through
``datetime.fromisoformat``. The Go zero time (year 1) that old TTS releases emit for unset timestamps means
"missing"; anything else outside :data:`VALID_FROM` .. :data:`VALID_UNTIL` is out of range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

__all__ = [
    "BAD",
    "MISSING",
    "OK",
    "OUT_OF_RANGE",
    "VALID_FROM",
    "VALID_UNTIL",
    "datetime64_from_epoch",
    "parse_times",
    "to_datetime",
]

OK, MISSING, BAD, OUT_OF_RANGE = 0, 1, 2, 3

#: Accepted reading times: LoRaWAN networks did not exist before 2000; a year past 2100 is a broken clock.
VALID_FROM = np.datetime64("2000-01-01T00:00:00", "us")
VALID_UNTIL = np.datetime64("2100-01-01T00:00:00", "us")
_GO_ZERO_FROM = np.datetime64("0001-01-01T00:00:00", "us")  # year 1: Go's zero time.Time
_GO_ZERO_UNTIL = np.datetime64("0002-01-01T00:00:00", "us")

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)", re.ASCII)
_NAT = "NaT"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _slow(s: str) -> str | None:
    """Naive UTC ISO string of an RFC 3339 timestamp with any offset or lower-case letters; None if invalid."""
    try:
        dt = datetime.fromisoformat(s.upper())
        if dt.tzinfo is None:
            return None
        return dt.astimezone(UTC).replace(tzinfo=None).isoformat()
    except (ValueError, OverflowError):  # not a date, or shifted out of years 1..9999
        return None


def _normalise(values: Sequence[object], status: npt.NDArray[np.uint8]) -> list[str]:
    out: list[str] = []
    append = out.append
    match = _RFC3339.fullmatch
    for i, s in enumerate(values):
        if s is None:
            status[i] = MISSING
            append(_NAT)
        elif type(s) is not str or match(s) is None:
            status[i] = BAD
            append(_NAT)
        elif s[-1] == "Z" and s[10] == "T":
            append(s[:-1])
        elif s[-6:] == "+00:00" and s[10] == "T":
            append(s[:-6])
        else:
            slow = _slow(s)
            if slow is None:
                status[i] = BAD
                append(_NAT)
            else:
                append(slow)
    return out


def _to_array(strings: list[str], status: npt.NDArray[np.uint8]) -> npt.NDArray[np.datetime64]:
    try:
        return np.array(strings, dtype="datetime64[us]")
    except Exception:  # ValueError; anything else numpy may raise or warn must not stop the batch either
        pass
    # Some string matched the pattern but is no date (month 13, 25 o'clock): find it element by element.
    out = np.full(len(strings), np.datetime64("NaT"), dtype="datetime64[us]")
    for i, s in enumerate(strings):
        try:
            out[i] = np.datetime64(s, "us")
        except Exception:
            status[i] = BAD
    return out


def parse_times(values: Sequence[object]) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.uint8]]:
    """Parse RFC 3339 strings (None = absent) into ``datetime64[us]`` UTC and a status per value.

    Status is :data:`OK`, :data:`MISSING` (None or year 1), :data:`BAD` (not an RFC 3339 timestamp with offset)
    or :data:`OUT_OF_RANGE`; the time is NaT unless the status is OK.
    """
    status = np.zeros(len(values), dtype=np.uint8)
    if not len(values):
        return np.zeros(0, dtype="datetime64[us]"), status
    times = _to_array(_normalise(values, status), status)
    parsed = status == OK
    zero = parsed & (times >= _GO_ZERO_FROM) & (times < _GO_ZERO_UNTIL)
    out = parsed & ~zero & ((times < VALID_FROM) | (times >= VALID_UNTIL))
    status[zero] = MISSING
    status[out] = OUT_OF_RANGE
    times[status != OK] = np.datetime64("NaT")
    return times, status


def to_datetime(value: np.datetime64) -> datetime:
    """A ``datetime64[us]`` as an aware UTC :class:`datetime`."""
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return _EPOCH + timedelta(microseconds=micros)


def datetime64_from_epoch(seconds: float) -> np.datetime64:
    """POSIX seconds (the hub's clock) as ``datetime64[us]``."""
    return np.datetime64(round(seconds * 1_000_000), "us")
