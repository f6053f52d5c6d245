"""The ``$filter`` expression language of OData 4 as SensorThings API v1.1 uses it: a lexer and a recursive-descent
parser from text to a small syntax tree. Compiling the tree to SQL is :mod:`.compile`'s job.

Grammar, loosest binding first (OData 4 ABNF, section 5.1.1.1 operator precedence)::

    or      := and ('or' and)*
    and     := compare ('and' compare)*
    compare := add (('eq'|'ne'|'gt'|'ge'|'lt'|'le') add)?
    add     := mul (('add'|'sub') mul)*
    mul     := unary (('mul'|'div'|'mod') unary)*
    unary   := 'not' unary | '-' unary | primary
    primary := literal | '(' or ')' | name '(' [or (',' or)*] ')' | path
    path    := name ('/' name)*

Literals: numbers, ``'strings'`` (a quote doubled inside), ``true``/``false``/``null``, ISO 8601 date-times
(``2026-12-06T10:00:00Z``) and ``geography'POINT(lon lat)'`` / ``geography'POLYGON((lon lat, ...))'`` (WKT).

Exceptions::

    FilterError(ValueError)     the text is not a valid expression (attributes: position, expression)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "Binary",
    "Call",
    "FilterError",
    "Literal",
    "Node",
    "Path",
    "Unary",
    "parse_filter",
    "parse_wkt",
]

COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
ARITHMETIC = {"add": "add", "sub": "add", "mul": "mul", "div": "mul", "mod": "mul"}
KEYWORDS = COMPARISONS | set(ARITHMETIC) | {"and", "or", "not"}
MAX_LENGTH = 8000
MAX_DEPTH = 64  # nested parentheses, function calls and unary operators


class FilterError(ValueError):
    """A ``$filter`` (or ``$orderby``) the parser refuses; ``position`` is the offending character's index."""

    def __init__(self, message: str, *, expression: str = "", position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.expression = expression
        self.position = position


@dataclass(frozen=True)
class Literal:
    value: Any
    kind: str  # number | string | bool | null | datetime | geography


@dataclass(frozen=True)
class Path:
    segments: tuple[str, ...]

    @property
    def text(self) -> str:
        return "/".join(self.segments)


@dataclass(frozen=True)
class Unary:
    op: str  # not | neg
    operand: Node


@dataclass(frozen=True)
class Binary:
    op: str  # a comparison, an arithmetic operator, and, or
    left: Node
    right: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


Node = Literal | Path | Unary | Binary | Call

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<geo>(?:geography|geometry)'(?:[^']|'')*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_@$][\w.@]*)
  | (?P<punct>[(),/-])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FilterError(f"unexpected character {text[pos]!r}", expression=text, position=pos)
        kind = m.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_LENGTH:
            raise FilterError(f"the expression is longer than {MAX_LENGTH} characters", expression=text[:80])
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    def error(self, message: str, token: _Token | None = None) -> FilterError:
        pos = token.pos if token else len(self.text)
        return FilterError(message, expression=self.text, position=pos)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Token:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of expression")
        self.i += 1
        return tok

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "name" and tok.text in words:
            self.i += 1
            return tok.text
        return None

    def expect(self, text: str) -> None:
        tok = self.peek()
        if tok is None or tok.text != text:
            raise self.error(f"expected {text!r}", tok)
        self.i += 1

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("empty expression")
        node = self.or_()
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected {tok.text!r}", tok)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.keyword("or"):
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.compare()
        while self.keyword("and"):
            node = Binary("and", node, self.compare())
        return node

    def compare(self) -> Node:
        node = self.add()
        op = self.keyword(*COMPARISONS)
        if op:
            node = Binary(op, node, self.add())
        return node

    def add(self) -> Node:
        node = self.mul()
        while op := self.keyword("add", "sub"):
            node = Binary(op, node, self.mul())
        return node

    def mul(self) -> Node:
        node = self.unary()
        while op := self.keyword("mul", "div", "mod"):
            node = Binary(op, node, self.unary())
        return node

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the expression nests deeper than {MAX_DEPTH} levels", self.peek())
        try:
            if self.keyword("not"):
                return Unary("not", self.unary())
            tok = self.peek()
            if tok is not None and tok.text == "-":
                self.i += 1
                return Unary("neg", self.unary())
            return self.primary()
        finally:
            self.depth -= 1

    def primary(self) -> Node:
        tok = self.take()
        if tok.text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if tok.kind == "number":
            return Literal(float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text), "number")
        if tok.kind == "string":
            return Literal(tok.text[1:-1].replace("''", "'"), "string")
        if tok.kind == "datetime":
            try:
                return Literal(datetime.fromisoformat(tok.text.replace("Z", "+00:00")), "datetime")
            except ValueError:
                raise self.error(f"not a valid date-time {tok.text!r}", tok) from None
        if tok.kind == "geo":
            body = tok.text[tok.text.index("'") + 1 : -1].replace("''", "'")
            try:
                return Literal(parse_wkt(body), "geography")
            except ValueError as e:
                raise self.error(str(e), tok) from None
        if tok.kind != "name":
            raise self.error(f"unexpected {tok.text!r}", tok)
        if tok.text in KEYWORDS:
            raise self.error(f"operator {tok.text!r} needs an operand before it", tok)
        if tok.text in ("true", "false"):
            return Literal(tok.text == "true", "bool")
        if tok.text == "null":
            return Literal(None, "null")
        nxt = self.peek()
        if nxt is not None and nxt.text == "(":
            self.i += 1
            args: list[Node] = []
            if not (self.peek() and self.peek().text == ")"):  # type: ignore[union-attr]
                args.append(self.or_())
                while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                    self.i += 1
                    args.append(self.or_())
            self.expect(")")
            return Call(tok.text.lower(), tuple(args))
        segments = [tok.text]
        while self.peek() is not None and self.peek().text == "/":  # type: ignore[union-attr]
            self.i += 1
            seg = self.take()
            if seg.kind != "name" or seg.text in KEYWORDS:
                raise self.error("expected a property name after '/'", seg)
            segments.append(seg.text)
        return Path(tuple(segments))


def parse_filter(text: str) -> Node:
    """The syntax tree of a ``$filter`` expression; :class:`FilterError` when it is not one."""
    return _Parser(text).parse()


_WKT_POINT = re.compile(r"^\s*POINT\s*\(\s*([^()]+?)\s*\)\s*$", re.IGNORECASE)
_WKT_POLYGON = re.compile(r"^\s*POLYGON\s*\(\s*\(\s*([^()]+?)\s*\)\s*\)\s*$", re.IGNORECASE)


def _coords(text: str) -> tuple[float, float]:
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(f"a WKT position is 'lon lat', not {text!r}")
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"a WKT position is two numbers, not {text!r}") from None


def parse_wkt(text: str) -> dict[str, Any]:
    """A WKT ``POINT`` or single-ring ``POLYGON`` as a GeoJSON geometry (``coordinates`` in lon, lat order)."""
    if m := _WKT_POINT.match(text):
        return {"type": "Point", "coordinates": list(_coords(m.group(1)))}
    if m := _WKT_POLYGON.match(text):
        ring = [list(_coords(p)) for p in m.group(1).split(",")]
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise ValueError("a WKT polygon ring needs at least four positions, the last equal to the first")
        return {"type": "Polygon", "coordinates": [ring]}
    raise ValueError(f"only WKT POINT and POLYGON are supported, not {text[:40]!r}")
