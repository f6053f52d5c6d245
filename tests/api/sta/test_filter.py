"""The $filter parser and the query options, as pure functions: precedence, literals, paths, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stadtpuls.api.sta.filter import Binary, Call, FilterError, Literal, Path, Unary, parse_filter
from stadtpuls.api.sta.options import MAX_TOP, parse_options


def test_and_binds_tighter_than_or_and_comparisons_tighter_than_and() -> None:
    tree = parse_filter("a eq 1 or b eq 2 and not c")
    assert tree == Binary(
        "or",
        Binary("eq", Path(("a",)), Literal(1, "number")),
        Binary("and", Binary("eq", Path(("b",)), Literal(2, "number")), Unary("not", Path(("c",)))),
    )


def test_arithmetic_precedence_and_parentheses() -> None:
    assert parse_filter("result add 2 mul 3 gt 7") == Binary(
        "gt",
        Binary("add", Path(("result",)), Binary("mul", Literal(2, "number"), Literal(3, "number"))),
        Literal(7, "number"),
    )
    assert parse_filter("(result add 2) mul 3 gt -7").right == Unary("neg", Literal(7, "number"))  # type: ignore[union-attr]


def test_literals() -> None:
    assert parse_filter("name eq 'O''Brien'").right == Literal("O'Brien", "string")  # type: ignore[union-attr]
    assert parse_filter("t lt 2026-12-06T10:00:00.5+01:00").right == Literal(  # type: ignore[union-attr]
        datetime(2026, 12, 6, 9, 0, 0, 500000, tzinfo=UTC), "datetime"
    )
    assert parse_filter("x eq 1.5e2").right == Literal(150.0, "number")  # type: ignore[union-attr]
    assert parse_filter("x eq null").right == Literal(None, "null")  # type: ignore[union-attr]
    assert parse_filter("x ne true").right == Literal(True, "bool")  # type: ignore[union-attr]


def test_paths_and_functions() -> None:
    assert parse_filter("Datastream/Thing/id eq 1").left == Path(("Datastream", "Thing", "id"))  # type: ignore[union-attr]
    call = parse_filter("geo.intersects(location, geography'POLYGON((0 0, 1 0, 1 1, 0 0))')")
    assert call == Call(
        "geo.intersects",
        (
            Path(("location",)),
            Literal({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, "geography"),
        ),
    )
    assert parse_filter("now() gt t") == Binary("gt", Call("now", ()), Path(("t",)))


@pytest.mark.parametrize(
    ("text", "position"),
    [("", None), ("a eq", None), ("a eq 'b", 5), ("a eq 1)", 6), ("a eq 1 b", 7), ("a / eq 1", 4), ("a # 1", 2)],
)
def test_syntax_errors_say_where(text: str, position: int | None) -> None:
    with pytest.raises(FilterError) as e:
        parse_filter(text)
    assert e.value.position == (position if position is not None else len(text) if text else 0)


def test_polygon_ring_must_close() -> None:
    with pytest.raises(FilterError, match="last equal to the first"):
        parse_filter("geo.intersects(location, geography'POLYGON((0 0, 1 0, 1 1, 0 1))')")


def test_expand_options_nest_and_path_form_expands() -> None:
    opts = parse_options(
        {"$expand": "Datastreams($top=2;$expand=Observations($orderby=phenomenonTime desc)),Thing/Locations"}
    )
    ds = opts.expand["Datastreams"]
    assert ds.top == 2
    assert ds.expand["Observations"].orderby[0].descending
    assert set(opts.expand["Thing"].expand) == {"Locations"}


def test_top_is_capped() -> None:
    assert parse_options({"$top": "100000"}).top == MAX_TOP


@pytest.mark.parametrize("text", ["(" * 5000 + "a eq 1" + ")" * 5000, "not " * 3000 + "a", "a eq " + "x" * 9000])
def test_deep_or_huge_expressions_are_refused_not_a_crash(text: str) -> None:
    with pytest.raises(FilterError, match="nests deeper|longer than"):
        parse_filter(text)


def test_deep_expand_is_refused() -> None:
    parse_options({"$expand": "Datastreams/Thing/Locations/Things/Datastreams"})
    with pytest.raises(FilterError, match="nests deeper"):
        parse_options({"$expand": "/".join(["Datastreams", "Thing"] * 10)})
    with pytest.raises(FilterError, match="nests deeper"):
        parse_options({"$expand": "Things($expand=" * 20 + "Things" + ")" * 20})
