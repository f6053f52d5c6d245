"""``$filter`` and ``$orderby`` trees (:mod:`.filter`) compiled to SQL over an entity set's source columns.

Every value reaches SQL as a :class:`psycopg.sql.Literal` and every column by its name in the source (never text
from the request). Types are checked while compiling, so ``name gt 5`` is a 400 with a message instead of a
database error. Supported functions: the string functions of SensorThings v1.1 (``substringof``, ``startswith``,
``endswith``, ``contains``, ``length``, ``indexof``, ``substring``, ``tolower``, ``toupper``, ``trim``,
``concat``), the date parts (``year`` ... ``second``), ``now``, ``round``/``floor``/``ceiling``, and the spatial
``geo.intersects``, ``st_intersects``, ``st_within``, ``st_contains`` between a point and a WKT literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import sql

from .entities import Column
from .filter import Binary, Call, FilterError, Literal, Node, Path, Unary
from .options import OrderBy

__all__ = ["compile_filter", "compile_orderby"]

Typed = tuple[sql.Composable, str]
_NUMERIC = frozenset({"int", "float", "number"})
_SQL_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "add": "+", "sub": "-", "mul": "*"}
_DATE_PARTS = {"year": "year", "month": "month", "day": "day", "hour": "hour", "minute": "minute", "second": "second"}
_TEXT_1 = {"tolower": "lower", "toupper": "upper", "trim": "btrim"}


def _family(t: str) -> str:
    return "number" if t in _NUMERIC else ("time" if t in ("time", "datetime") else t)


class _Compiler:
    def __init__(self, columns: Mapping[str, Column]) -> None:
        self.columns = columns

    def node(self, n: Node) -> Typed:
        if isinstance(n, Literal):
            return self.literal(n)
        if isinstance(n, Path):
            col = self.columns.get(n.text)
            if col is None:
                raise FilterError(f"unknown property {n.text!r}; filterable: {', '.join(sorted(self.columns))}")
            return sql.Identifier(col.name), col.type
        if isinstance(n, Unary):
            inner, t = self.node(n.operand)
            if n.op == "not":
                self.need(t, "bool", "not")
                return sql.SQL("(NOT {})").format(inner), "bool"
            self.need(_family(t), "number", "-")
            return sql.SQL("(-{})").format(inner), t
        if isinstance(n, Binary):
            return self.binary(n)
        return self.call(n)

    @staticmethod
    def need(t: str, want: str, what: str) -> None:
        if t != want:
            raise FilterError(f"{what} needs a {want} operand, not a {t}")

    @staticmethod
    def literal(n: Literal) -> Typed:
        if n.kind == "null":
            return sql.SQL("NULL"), "null"
        if n.kind == "datetime":
            return sql.SQL("{}::timestamptz").format(sql.Literal(n.value)), "time"
        if n.kind == "geography":
            return sql.SQL(""), "geography"  # only inside spatial functions, which read the literal itself
        if n.kind == "number":
            return sql.Literal(n.value), "number"
        return sql.Literal(n.value), "text" if n.kind == "string" else "bool"

    def binary(self, n: Binary) -> Typed:
        if n.op in ("and", "or"):
            (left, lt), (right, rt) = self.node(n.left), self.node(n.right)
            self.need(lt, "bool", n.op)
            self.need(rt, "bool", n.op)
            return sql.SQL("({} {} {})").format(left, sql.SQL(n.op.upper()), right), "bool"
        if n.op in ("eq", "ne") and isinstance(n.right, Literal) and n.right.kind == "null":
            left, _ = self.node(n.left)
            return sql.SQL("({} IS {}NULL)").format(left, sql.SQL("" if n.op == "eq" else "NOT ")), "bool"
        (left, lt), (right, rt) = self.operand(n.left, n.right), self.operand(n.right, n.left)
        if n.op in _SQL_OPS and n.op not in ("add", "sub", "mul"):
            if _family(lt) != _family(rt):
                raise FilterError(f"cannot compare a {lt} with a {rt} ({n.op})")
            if lt in ("point", "geography", "json"):
                raise FilterError(f"{n.op} does not compare geometries; use geo.intersects")
            return sql.SQL("({} {} {})").format(left, sql.SQL(_SQL_OPS[n.op]), right), "bool"
        self.need(_family(lt), "number", n.op)
        self.need(_family(rt), "number", n.op)
        kind = "float" if "float" in (lt, rt) or n.op == "div" else lt
        if n.op == "div":
            return sql.SQL("({}::float8 / {})").format(left, right), "float"
        if n.op == "mod":
            return sql.SQL("mod({}::numeric, {}::numeric)::float8").format(left, right), "float"
        return sql.SQL("({} {} {})").format(left, sql.SQL(_SQL_OPS[n.op]), right), kind

    def operand(self, n: Node, other: Node) -> Typed:
        """A comparison side; ``true``/``false`` against a number (a truth Observation's result) becomes 1/0."""
        out, t = self.node(n)
        if t == "bool" and isinstance(n, Literal) and isinstance(other, Path):
            col = self.columns.get(other.text)
            if col is not None and col.type in _NUMERIC:
                return sql.Literal(1.0 if n.value else 0.0), "number"
        return out, t

    def call(self, n: Call) -> Typed:
        name, args = n.name, n.args
        if name in ("geo.intersects", "st_intersects", "st_within", "st_contains"):
            return self.spatial(name, args)
        if name == "now":
            self.arity(n, 0)
            return sql.SQL("now()"), "time"
        typed = [self.node(a) for a in args]
        if name in ("substringof", "contains", "startswith", "endswith", "indexof", "concat"):
            self.arity(n, 2)
            (a, at), (b, bt) = typed
            self.need(at, "text", name)
            self.need(bt, "text", name)
            if name == "substringof":  # substringof(needle, haystack)
                return sql.SQL("(strpos({}, {}) > 0)").format(b, a), "bool"
            if name == "contains":
                return sql.SQL("(strpos({}, {}) > 0)").format(a, b), "bool"
            if name == "startswith":
                return sql.SQL("starts_with({}, {})").format(a, b), "bool"
            if name == "endswith":
                return sql.SQL("(right({0}, length({1})) = {1})").format(a, b), "bool"
            if name == "indexof":
                return sql.SQL("(strpos({}, {}) - 1)").format(a, b), "int"
            return sql.SQL("({} || {})").format(a, b), "text"
        if name in _TEXT_1 or name == "length":
            self.arity(n, 1)
            self.need(typed[0][1], "text", name)
            if name == "length":
                return sql.SQL("length({})").format(typed[0][0]), "int"
            return sql.SQL("{}({})").format(sql.SQL(_TEXT_1[name]), typed[0][0]), "text"
        if name == "substring":
            if len(args) not in (2, 3):
                raise FilterError("substring takes 2 or 3 arguments")
            self.need(typed[0][1], "text", name)
            for _, t in typed[1:]:
                self.need(_family(t), "number", name)
            rest = sql.SQL("").join(sql.SQL(", {}::int").format(a) for a, _ in typed[2:])
            return sql.SQL("substr({}, {}::int + 1{})").format(typed[0][0], typed[1][0], rest), "text"
        if name in _DATE_PARTS:
            self.arity(n, 1)
            self.need(_family(typed[0][1]), "time", name)
            part = sql.SQL(_DATE_PARTS[name])
            return sql.SQL("extract({} FROM {} AT TIME ZONE 'UTC')::int").format(part, typed[0][0]), "int"
        if name in ("round", "floor", "ceiling"):
            self.arity(n, 1)
            self.need(_family(typed[0][1]), "number", name)
            fn = sql.SQL("ceil" if name == "ceiling" else name)
            return sql.SQL("{}({}::float8)").format(fn, typed[0][0]), "float"
        raise FilterError(f"unknown function {name!r}")

    @staticmethod
    def arity(n: Call, count: int) -> None:
        if len(n.args) != count:
            raise FilterError(f"{n.name} takes {count} argument{'s' if count != 1 else ''}, not {len(n.args)}")

    def spatial(self, name: str, args: tuple[Node, ...]) -> Typed:
        if len(args) != 2:
            raise FilterError(f"{name} takes 2 arguments")
        a, b = args
        if name == "st_contains":
            a, b = b, a  # st_contains(area, point) is st_within(point, area)
        if not isinstance(b, Literal) or b.kind != "geography":
            raise FilterError(f"{name} compares a location with a geography'...' literal")
        point, t = self.node(a)
        if t != "point":
            raise FilterError(f"{name} needs a location property, not a {t}")
        geom: dict[str, Any] = b.value
        if geom["type"] == "Point":
            x, y = geom["coordinates"]
            return sql.SQL("({} ~= point({}, {}))").format(point, sql.Literal(x), sql.Literal(y)), "bool"
        ring = ",".join(f"({x!r},{y!r})" for x, y in geom["coordinates"][0])
        return sql.SQL("({}::polygon @> {})").format(sql.Literal(f"({ring})"), point), "bool"


def compile_filter(node: Node, columns: Mapping[str, Column]) -> sql.Composable:
    """The SQL condition of a ``$filter`` tree over ``columns``; :class:`FilterError` when it is not one."""
    out, t = _Compiler(columns).node(node)
    if t != "bool":
        raise FilterError(f"$filter must be a condition (true or false), not a {t}")
    return out


def compile_orderby(items: tuple[OrderBy, ...], columns: Mapping[str, Column]) -> list[tuple[str, bool]]:
    """(column, descending) for each ``$orderby`` item."""
    out = []
    for item in items:
        col = columns.get(item.path.text)
        if col is None or col.type in ("point", "json"):
            raise FilterError(f"cannot order by {item.path.text!r}; sortable: {', '.join(sorted(columns))}")
        out.append((col.name, item.descending))
    return out
