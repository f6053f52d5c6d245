"""Simulated time: integer microseconds since the Unix epoch (UTC), parsing of CLI times, RFC 3339 formatting and
local (reporting time zone) calendar positions for the daily and weekly curves.

Exceptions::

    TimeParseError      a --start / --duration value that cannot be read (attribute: text)
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

__all__ = [
    "DAY_US",
    "HOUR_US",
    "US",
    "TimeParseError",
    "from_us",
    "iso_array",
    "iso_bytes",
    "iso_us",
    "local_date",
    "local_week_hours",
    "parse_duration",
    "parse_start",
    "to_us",
]

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TimeParseError(ValueError):
    def __init__(self, text: str, message: str) -> None:
        super().__init__(f"{message}: {text!r}")
        self.text = text


def to_us(dt: datetime) -> int:
    """A datetime (naive = UTC) as integer microseconds since the epoch."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))


def iso_us(us: int, *, z: bool = True) -> str:
    """RFC 3339 with six fraction digits, ``Z`` or ``+00:00``."""
    text = from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text + ("Z" if z else "+00:00")


def iso_array(us: np.ndarray, *, extra_ns: np.ndarray | None = None, z: bool = True) -> list[str]:
    """Vectorised RFC 3339 text of many instants: six fraction digits, or nine when ``extra_ns`` (0..999 per row)
    is given (network servers stamp nanoseconds)."""
    text = np.datetime_as_string(np.asarray(us, dtype=np.int64).astype("datetime64[us]"), unit="us")
    suffix = "Z" if z else "+00:00"
    if extra_ns is None:
        return [t + suffix for t in text.tolist()]
    ns = np.char.zfill(np.asarray(extra_ns, dtype=np.int64).astype(str), 3)
    return [t + n + suffix for t, n in zip(text.tolist(), ns.tolist(), strict=True)]


def iso_bytes(us: np.ndarray, suffix: bytes = b"Z") -> list[bytes]:
    """Vectorised RFC 3339 text (six fraction digits and ``suffix``) as bytes, built digit by digit in numpy: the
    date and time of each distinct second are formatted once."""
    us = np.asarray(us, dtype=np.int64)
    n = len(us)
    if n == 0:
        return []
    sec, frac = np.divmod(us, US)
    uniq, inverse = np.unique(sec, return_inverse=True)
    heads = np.array([from_us(int(x) * US).strftime("%Y-%m-%dT%H:%M:%S.").encode() for x in uniq.tolist()], dtype="S20")
    out = np.empty((n, 26 + len(suffix)), dtype=np.uint8)
    out[:, :20] = heads.view(np.uint8).reshape(-1, 20)[inverse.reshape(-1)]
    out[:, 20:26] = (frac[:, None] // 10 ** np.arange(5, -1, -1) % 10 + 48).astype(np.uint8)
    out[:, 26:] = np.frombuffer(suffix, dtype=np.uint8)
    return out.view(f"S{out.shape[1]}").ravel().tolist()


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``6h``, ``7d``, ``2w`` or plain seconds, as microseconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)?\s*", text)
    if not m:
        raise TimeParseError(text, "not a duration (e.g. 3600, 90m, 6h, 7d, 2w)")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if seconds <= 0:
        raise TimeParseError(text, "duration must be positive")
    return round(seconds * US)


def parse_start(text: str) -> int:
    """An ISO date or date-time (naive = UTC), or ``now`` (the current minute), as microseconds."""
    if text.strip().lower() == "now":
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        return to_us(now)
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeParseError(text, "not an ISO date or date-time (e.g. 2025-03-03 or 2025-03-03T06:00:00Z)") from None
    return to_us(dt)


def local_week_hours(us: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    """Hours since local Monday 00:00 (0 <= h < 168) of each instant, in time zone ``tz``."""
    us = np.asarray(us, dtype=np.int64)
    if us.size == 0:
        return np.zeros(0)
    lo, hi = int(us.min()), int(us.max())
    offsets = {_offset_us(lo, tz), _offset_us(hi, tz)}
    if len(offsets) == 1:
        local = us + offsets.pop()
    else:  # a daylight-saving change inside the range: per-row offsets
        local = us + np.array([_offset_us(int(x), tz) for x in us.tolist()], dtype=np.int64)
    # 1970-01-01 was a Thursday: shift by three days so that 0 is a Monday
    return ((local + 3 * DAY_US) % (7 * DAY_US)) / HOUR_US


def local_date(us: int, tz: ZoneInfo) -> date:
    return from_us(us).astimezone(tz).date()


def _offset_us(us: int, tz: ZoneInfo) -> int:
    off = from_us(us).astimezone(tz).utcoffset()
    return int(off.total_seconds()) * US if off is not None else 0
