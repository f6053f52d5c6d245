"""Time-range query parameters: defaults, local interpretation of naive times, and the limits that keep a
query bounded. Every violation is a 422 problem naming the parameter, never a server error."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .problems import Problem, invalid_value

__all__ = [
    "EARLIEST",
    "HISTORY_MAX_BUCKETS",
    "LATEST",
    "check_day",
    "check_instant",
    "history_range",
    "invalid",
    "resolve_range",
]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
#: buckets of a rolled-up history per request: a leap year of 15-minute buckets (35,136) with room to spare. A year of
#: quarters is read as kept text of its closed days (``history_fragments``), 45 ms on a year of the medium town.
HISTORY_MAX_BUCKETS = 40_000


def invalid(param: str, msg: str) -> Problem:
    """422 for a query parameter's value (:func:`~stadtpuls.api.problems.invalid_value`)."""
    return invalid_value("query", param, msg, msg)


def check_instant(value: datetime | None, param: str, tz: str) -> datetime | None:
    """Aware datetime (naive values are local time of ``tz``) within 1970..2200."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    if not EARLIEST <= value < LATEST:
        raise invalid(param, "must be between 1970 and 2200")
    return value


def check_day(value: date, param: str, *, today: date, past_days: int, future_days: int) -> date:
    if value < today - timedelta(days=past_days) or value > today + timedelta(days=future_days):
        raise invalid(param, f"must be within {past_days} days before and {future_days} days after today")
    return value


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    *,
    tz: str,
    now: datetime,
    default_span: timedelta,
    max_span: timedelta,
    step: timedelta | None = None,
    max_buckets: int = 5000,
) -> tuple[datetime, datetime]:
    """``(start, end)`` with defaults (end = now, start = end - default_span), checked: start before end,
    no longer than ``max_span`` and at most ``max_buckets`` steps."""
    s = check_instant(start, "start", tz)
    e = check_instant(end, "end", tz)
    if e is None:
        e = now if s is None else min(now, s + default_span) if s < now else s + default_span
    if s is None:
        s = e - default_span
    if s >= e:
        raise invalid("start", "must be before end")
    if e - s > max_span:
        raise invalid("end", f"the range may span at most {max_span.days} days")
    if step is not None and (e - s) / step > max_buckets:
        raise invalid("bucket", f"at most {max_buckets} buckets per request; choose a coarser bucket")
    return s, e


def history_range(
    start: datetime | None,
    end: datetime | None,
    *,
    bucket: str,
    tz: str,
    now: datetime,
    max_range_days: int,
    default_span: timedelta | None = None,
) -> tuple[datetime, datetime]:
    """The range of a rolled-up history (:mod:`api.queries.rollups`, a bin's fill): ``default_span`` by default
    (one day; 30 for day buckets). Buckets come from the rollups, at a cost independent of the range: they accept
    four times ``max_range_days`` and :data:`HISTORY_MAX_BUCKETS` buckets."""
    if default_span is None:
        default_span = timedelta(days=30) if bucket == "day" else timedelta(days=1)
    return resolve_range(
        start,
        end,
        tz=tz,
        now=now,
        default_span=default_span,
        max_span=timedelta(days=max_range_days * 4),
        step={"15min": timedelta(minutes=15), "hour": timedelta(hours=1)}.get(bucket, timedelta(days=1)),
        max_buckets=HISTORY_MAX_BUCKETS,
    )
