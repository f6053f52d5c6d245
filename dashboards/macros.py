"""Expand a panel's SQL the way Grafana does before sending it to PostgreSQL, to run dashboards outside Grafana.

Grafana works in two steps. The browser replaces template variables; the PostgreSQL datasource then replaces
the global interval variables and its macros. With a time range ``from .. to`` and interval ``i``:

=============================================  ========================================================
``$var`` / ``${var}``                          single value: the text, ``'`` doubled (quote it in SQL: ``'$tz'``)
``$var`` (multi-value or "All")                 quoted list ``'a','b'`` (use ``IN ($var)``)
``$__interval`` / ``$__interval_ms``            ``1h`` / ``3600000`` (Grafana's interval format)
``$__timeFilter(c)``                           ``c BETWEEN '2024-05-01T10:00:00Z' AND '2024-05-08T10:00:00Z'``
``$__timeFrom()`` / ``$__timeTo()``            ``'2024-05-01T10:00:00Z'`` (RFC 3339, UTC, quoted)
``$__timeGroup(c, 1h)``                        ``floor(extract(epoch from c)/3600)*3600``, or with the
                                               datasource's ``timescaledb`` option ``time_bucket('3600.000s',c)``
``$__timeGroupAlias(c, 1h)``                   the same followed by `` AS "time"``
``$__time(c)`` / ``$__timeEpoch(c)``           ``c AS "time"`` / ``extract(epoch from c) as "time"``
``$__unixEpochFrom()`` / ``$__unixEpochTo()``  epoch seconds
=============================================  ========================================================

Any other ``$__name(...)`` is an error in Grafana and here. A ``$name`` that is neither a dashboard variable nor a
built-in raises :class:`UnknownVariable` (Grafana would send it unchanged and PostgreSQL would fail on it).

Exceptions::

    MacroError              a macro could not be expanded (attributes: macro, args)
    UnknownVariable         a template variable is not defined (attribute: name)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "MacroError",
    "QueryContext",
    "UnknownVariable",
    "auto_interval",
    "expand",
    "expand_macros",
    "format_interval",
    "format_time",
    "interpolate_variables",
    "parse_interval",
    "referenced_variables",
]

VariableValue = str | list[str]

# Grafana's template-variable syntaxes: $var, [[var]] / [[var:fmt]], ${var} / ${var:fmt}
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")
# The datasource's macro pattern: $name(args) with no ')' inside the arguments
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
BUILTINS = {"__interval", "__interval_ms"}


class MacroError(ValueError):
    def __init__(self, macro: str, args: list[str], message: str) -> None:
        super().__init__(f"${macro}({', '.join(args)}): {message}")
        self.macro = macro
        self.arguments = args


class UnknownVariable(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(f"template variable ${name} is not defined")
        self.name = name


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel: time range, interval, variable values, datasource options."""

    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)
    variables: Mapping[str, VariableValue] = field(default_factory=dict)
    timescaledb: bool = False


def format_time(t: datetime) -> str:
    """Go's RFC3339Nano in UTC: ``2024-05-01T10:00:00Z``, fractions without trailing zeros."""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_interval(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``1d``, ``500ms`` ... (Grafana's interval syntax)."""
    m = _INTERVAL.match(text.strip().strip("'"))
    if not m:
        raise ValueError(f"not an interval: {text!r}")
    return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])


def format_interval(d: timedelta) -> str:
    """Grafana's ``$__interval`` text: the largest whole unit, truncated (``90s`` -> ``1m``)."""
    ms = int(d / timedelta(milliseconds=1))
    for unit in ("y", "d", "h", "m", "s"):
        size = int(_UNIT_S[unit] * 1000)
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


_ROUND_MS = [  # Grafana's rounding of an automatic interval: (below this many ms, use this many ms)
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (30600000, 21600000),
    (86400000, 43200000),
    (604800000, 86400000),
    (1814400000, 604800000),
    (3628800000, 2592000000),
]


def auto_interval(
    start: datetime, end: datetime, *, min_interval: str | None = None, max_data_points: int = 1000
) -> timedelta:
    """``$__interval`` for a range drawn ``max_data_points`` wide: range / points, rounded, at least the minimum."""
    raw = (end - start) / max(max_data_points, 1) / timedelta(milliseconds=1)
    ms = next((r for below, r in _ROUND_MS if raw < below), 31536000000)
    interval = timedelta(milliseconds=ms)
    if min_interval:
        interval = max(interval, parse_interval(min_interval))
    return interval


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _format(name: str, value: VariableValue, fmt: str | None) -> str:
    if fmt == "raw":
        return ",".join(value) if isinstance(value, list) else value
    if fmt is not None:
        raise ValueError(f"variable format {fmt!r} of ${name} is not supported here")
    if isinstance(value, list):
        return ",".join(_quote(v) for v in value)  # multi-value / All: a quoted list
    return value.replace("'", "''")


def interpolate_variables(sql: str, ctx: QueryContext) -> str:
    """The browser's step: dashboard variables and ``$__interval`` / ``$__interval_ms``."""
    builtins = {
        "__interval": format_interval(ctx.interval),
        "__interval_ms": str(int(ctx.interval / timedelta(milliseconds=1))),
    }

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(5)
        if name in builtins:
            return builtins[name]
        if name in ctx.variables:
            return _format(name, ctx.variables[name], fmt)
        if name.startswith("__"):
            return m.group(0)  # a datasource macro or another built-in: left for the next step
        raise UnknownVariable(name)

    return _VARIABLE.sub(repl, sql)


def _time_group(args: list[str], ctx: QueryContext, macro: str) -> str:
    if len(args) < 2:
        raise MacroError(macro, args, "needs a time column and an interval")
    try:
        seconds = parse_interval(args[1]).total_seconds()
    except ValueError as e:
        raise MacroError(macro, args, str(e)) from e
    if ctx.timescaledb:
        return f"time_bucket('{seconds:.3f}s',{args[0]})"
    step = f"{seconds:g}" if seconds != int(seconds) else str(int(seconds))
    return f"floor(extract(epoch from {args[0]})/{step})*{step}"


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    frm, to = format_time(ctx.start), format_time(ctx.end)
    needs_column = {"__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter"}
    if name in needs_column and not (args and args[0]):
        raise MacroError(name, args, "missing time column argument")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{frm}' AND '{to}'"
    if name == "__timeFrom":
        return f"'{frm}'"
    if name == "__timeTo":
        return f"'{to}'"
    if name == "__timeGroup":
        return _time_group(args, ctx, name)
    if name == "__timeGroupAlias":
        return _time_group(args, ctx, name) + ' AS "time"'
    if name == "__unixEpochFilter":
        return f"{args[0]} >= {int(ctx.start.timestamp())} AND {args[0]} <= {int(ctx.end.timestamp())}"
    raise MacroError(name, args, "unknown macro")


def expand_macros(sql: str, ctx: QueryContext) -> str:
    """The datasource's step: global interval variables, epoch shortcuts, then the ``$__macro(...)`` calls."""
    sql = sql.replace("$__interval_ms", str(int(ctx.interval / timedelta(milliseconds=1))))
    sql = sql.replace("$__interval", format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(ctx.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(ctx.end.timestamp())))
    return _MACRO.sub(lambda m: _macro(m.group(1), [a.strip() for a in m.group(2).split(",")], ctx), sql)


def expand(sql: str, ctx: QueryContext) -> str:
    """Panel SQL as PostgreSQL receives it from Grafana."""
    return expand_macros(interpolate_variables(sql, ctx), ctx)


def referenced_variables(sql: str) -> set[str]:
    """Names of the template variables a query uses (built-ins and macros excluded)."""
    names = {m.group(1) or m.group(2) or m.group(4) for m in _VARIABLE.finditer(sql)}
    return {n for n in names if n and not n.startswith("__")}
