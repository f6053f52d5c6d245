"""The query options of a SensorThings request (``$top``, ``$skip``, ``$count``, ``$orderby``, ``$select``,
``$filter``, ``$expand`` with nested options, and the server's paging token ``$skiptoken``), read into
:class:`Options`. Text that is not a valid option raises :class:`~.filter.FilterError` (answered with 400).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .filter import FilterError, Node, Path, parse_filter

__all__ = ["DEFAULT_TOP", "MAX_TOP", "Options", "OrderBy", "parse_options"]

DEFAULT_TOP = 100
MAX_TOP = 1000
MAX_EXPAND_DEPTH = 8
KNOWN = frozenset(
    {"$top", "$skip", "$count", "$orderby", "$select", "$filter", "$expand", "$skiptoken", "$resultFormat"}
)


@dataclass(frozen=True)
class OrderBy:
    path: Path
    descending: bool = False


@dataclass
class Options:
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    orderby: tuple[OrderBy, ...] = ()
    select: tuple[str, ...] = ()
    filter: Node | None = None
    expand: dict[str, Options] = field(default_factory=dict)
    skiptoken: str | None = None
    source: Mapping[str, str] = field(default_factory=dict)  # the options as given (for nested next links)


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside parentheses and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(text):
        if c == "'":
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
            if depth < 0:
                raise FilterError("unbalanced ')'", expression=text, position=i)
        elif not quoted and depth == 0 and c == sep:
            parts.append(text[start:i])
            start = i + 1
    if depth or quoted:
        raise FilterError("unbalanced parentheses or quotes", expression=text)
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _int(name: str, text: str) -> int:
    if not text.isdigit():
        raise FilterError(f"{name} must be a non-negative integer, not {text!r}")
    return int(text)


def _orderby(text: str) -> tuple[OrderBy, ...]:
    out = []
    for item in _split(text, ","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise FilterError(f"$orderby items are 'property [asc|desc]', not {item!r}")
        node = parse_filter(words[0])
        if not isinstance(node, Path):
            raise FilterError(f"$orderby takes a property path, not {words[0]!r}")
        out.append(OrderBy(node, len(words) == 2 and words[1].lower() == "desc"))
    return tuple(out)


def _expand(text: str, depth: int) -> dict[str, Options]:
    if depth > MAX_EXPAND_DEPTH:
        raise FilterError(f"$expand nests deeper than {MAX_EXPAND_DEPTH} levels")
    out: dict[str, Options] = {}
    for item in _split(text, ","):
        if not item:
            raise FilterError("$expand has an empty item")
        nested: Mapping[str, str] = {}
        if item.endswith(")") and "(" in item:
            name, inner = item[: item.index("(")].strip(), item[item.index("(") + 1 : -1]
            nested = dict(_pair(p) for p in _split(inner, ";") if p)
        else:
            name = item
        head, _, rest = name.partition("/")
        if rest:  # Datastreams/Observations is Datastreams($expand=Observations(...))
            inner_opts = _expand(rest + (item[len(name) :] if nested else ""), depth + 1)
            opts = out.setdefault(head, Options())
            opts.expand.update(inner_opts)
            continue
        opts = parse_options(nested, depth + 1)
        if head in out:
            opts.expand.update(out[head].expand)
        out[head] = opts
    return out


def _pair(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq:
        raise FilterError(f"nested options are '$name=value', not {text!r}")
    return key.strip(), value.strip()


def parse_options(params: Mapping[str, str], depth: int = 0) -> Options:
    """The options of one request (or, ``depth`` levels down, of one ``$expand`` item)."""
    opts = Options(source=dict(params))
    for key in params:
        if key.startswith("$") and key not in KNOWN:
            raise FilterError(f"unknown query option {key}")
    if "$top" in params:
        opts.top = min(_int("$top", params["$top"]), MAX_TOP)
    if "$skip" in params:
        opts.skip = _int("$skip", params["$skip"])
    if "$count" in params:
        if params["$count"] not in ("true", "false"):
            raise FilterError(f"$count is true or false, not {params['$count']!r}")
        opts.count = params["$count"] == "true"
    if params.get("$orderby"):
        opts.orderby = _orderby(params["$orderby"])
    if params.get("$select"):
        opts.select = tuple(s for s in _split(params["$select"], ",") if s)
    if params.get("$filter"):
        opts.filter = parse_filter(params["$filter"])
    if params.get("$expand"):
        opts.expand = _expand(params["$expand"], depth)
    opts.skiptoken = params.get("$skiptoken") or None
    return opts
