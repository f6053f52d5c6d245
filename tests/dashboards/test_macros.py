"""Grafana's macro and variable expansion, as documented and as PostgreSQL then evaluates it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from stadtpuls.dashboards.macros import (
    MacroError,
    QueryContext,
    UnknownVariable,
    auto_interval,
    expand,
    format_interval,
    format_time,
    parse_interval,
)

START = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
END = datetime(2026, 3, 30, 12, 30, 15, 250000, tzinfo=UTC)
CTX = QueryContext(
    start=START,
    end=END,
    interval=timedelta(hours=1),
    variables={"lot": ["lot-a", "o'brien"], "tz": "Europe/Berlin", "n": "15"},
)


def test_time_filter_and_range_are_quoted_rfc3339_utc() -> None:
    assert expand("WHERE $__timeFilter(p.time)", CTX) == (
        "WHERE p.time BETWEEN '2026-03-28T23:00:00Z' AND '2026-03-30T12:30:15.25Z'"
    )
    assert expand("$__timeFrom() .. $__timeTo()", CTX) == "'2026-03-28T23:00:00Z' .. '2026-03-30T12:30:15.25Z'"
    assert expand("$__unixEpochFrom()", CTX) == str(int(START.timestamp()))


def test_time_group_alias_with_and_without_timescaledb() -> None:
    sql = "SELECT $__timeGroupAlias(bucket, $__interval), 1"
    assert expand(sql, CTX) == 'SELECT floor(extract(epoch from bucket)/3600)*3600 AS "time", 1'
    tsdb = QueryContext(start=START, end=END, interval=timedelta(minutes=5), timescaledb=True)
    assert expand(sql, tsdb) == "SELECT time_bucket('300.000s',bucket) AS \"time\", 1"
    assert expand("$__timeGroup(t, '90s')", CTX) == "floor(extract(epoch from t)/90)*90"


def test_variables_single_multi_and_builtin_intervals() -> None:
    assert expand("lot_id IN ($lot)", CTX) == "lot_id IN ('lot-a','o''brien')"
    assert expand("AT TIME ZONE '$tz' AND '${tz}'", CTX) == "AT TIME ZONE 'Europe/Berlin' AND 'Europe/Berlin'"
    assert expand("x >= $n AND ms = $__interval_ms", CTX) == "x >= 15 AND ms = 3600000"


def test_unknown_macros_and_variables_are_errors() -> None:
    with pytest.raises(MacroError) as err:
        expand("$__timeFilterz(t)", CTX)
    assert err.value.macro == "__timeFilterz"
    with pytest.raises(MacroError):
        expand("$__timeGroup(t)", CTX)
    with pytest.raises(UnknownVariable) as unknown:
        expand("IN ($line)", CTX)
    assert unknown.value.name == "line"


def test_intervals_parse_format_and_round_like_grafana() -> None:
    assert parse_interval("1h") == timedelta(hours=1)
    assert parse_interval("'500ms'") == timedelta(milliseconds=500)
    assert [format_interval(timedelta(seconds=s)) for s in (0.2, 30, 90, 3600, 86400 * 2)] == [
        "200ms",
        "30s",
        "1m",
        "1h",
        "2d",
    ]
    week = (END - timedelta(days=7), END)
    assert auto_interval(*week) == timedelta(minutes=10)
    assert auto_interval(*week, min_interval="1h") == timedelta(hours=1)
    assert auto_interval(END - timedelta(hours=1), END) == timedelta(seconds=5)
    with pytest.raises(ValueError):
        parse_interval("soon")


def test_format_time_trims_fraction() -> None:
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"


def test_expanded_macros_bucket_and_filter_in_postgresql(db_url: str) -> None:
    sql = """
SELECT $__timeGroupAlias(t, $__interval), count(*) AS n
FROM (VALUES ('2026-03-29T00:10:00Z'::timestamptz), ('2026-03-29T00:50:00Z'), ('2026-03-29T01:05:00Z'),
             ('2026-03-31T00:00:00Z')) v(t)
WHERE $__timeFilter(t)
GROUP BY 1 ORDER BY 1"""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(expand(sql, CTX)).fetchall()
    hour = datetime(2026, 3, 29, tzinfo=UTC).timestamp()
    assert [(float(t), n) for t, n in rows] == [(hour, 2), (hour + 3600, 1)]
