"""Builder: adopted whole-batch arrays, recorded writes of a few rows, shared presence masks, failures."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.codecs.base import FieldSpec
from stadtpuls.ingest.codecs.builder import Builder
from stadtpuls.ingest.codecs.lazy_columns import Later, LazyColumn, Lookup

FIELDS = (
    FieldSpec("a", "int"),
    FieldSpec("b", "float"),
    FieldSpec("label", "str"),
    FieldSpec("volt", "object"),
    FieldSpec("never", "int"),
)


def test_whole_batch_write_adopts_the_array_and_the_where_mask() -> None:
    out = Builder(4, FIELDS)
    values = np.array([1, 2, 3, 4])
    where = np.array([True, False, True, True])
    out.set("a", slice(None), values, where=where)
    col = out.build().columns["a"]
    assert col.values is values and col.present is where


def test_columns_sharing_a_mask_keep_their_own_presence_when_one_changes() -> None:
    out = Builder(3, FIELDS)
    where = np.array([True, False, False])
    out.set("a", slice(None), np.array([1, 2, 3]), where=where)
    out.set("b", slice(None), np.array([0.5, 1.5, 2.5]), where=where)
    out.set("a", np.array([2]), np.array([9]))
    decoded = out.build()
    assert decoded.columns["a"].present.tolist() == [True, False, True]
    assert decoded.columns["b"].present.tolist() == [True, False, False]
    assert where.tolist() == [True, False, False]
    assert decoded.objects() == [{"a": 1, "b": 0.5}, {}, {"a": 9}]


def test_write_to_some_rows_is_built_into_a_dense_column_when_read() -> None:
    out = Builder(5, FIELDS)
    out.set("b", np.array([1, 3]), np.array([0.25, 0.75]))
    col = out.build().columns["b"]
    assert isinstance(col, LazyColumn)
    assert col.present.tolist() == [False, True, False, True, False]
    assert col.values.dtype == np.float64 and col.values.tolist() == [0.0, 0.25, 0.0, 0.75, 0.0]


def test_text_column_from_lookup_and_later_writes_in_order() -> None:
    out = Builder(4, FIELDS)
    table = np.array([None, "one", "two"], dtype=object)
    out.set(
        "label", slice(None), Lookup(table, np.array([1, 2, 0, 1], dtype=np.uint8)), where=np.array([1, 1, 0, 1], bool)
    )
    out.set("label", np.array([3]), Later(lambda k: np.array([f"row {k}"], dtype=object), 3))
    assert out.build().objects() == [{"label": "one"}, {"label": "two"}, {}, {"label": "row 3"}]


def test_numbers_then_text_make_an_object_column() -> None:
    out = Builder(3, FIELDS)
    out.set("volt", slice(None), np.array([3.6, 3.1, 3.3]), dtype=np.float64)
    out.set("volt", np.array([1]), "3.1(low battery)")
    objs = out.build().objects()
    assert objs == [{"volt": 3.6}, {"volt": "3.1(low battery)"}, {"volt": 3.3}]
    first = objs[0]
    assert first is not None and type(first["volt"]) is float


def test_failed_rows_lose_their_fields_and_keep_the_reason() -> None:
    out = Builder(3, FIELDS)
    where = np.array([True, True, False])
    out.set("a", slice(None), np.array([1, 2, 3]), where=where)
    out.set("b", slice(None), np.array([1.0, 2.0, 3.0]), where=where)
    out.fail(slice(None), "too short", where=np.array([False, True, False]))
    decoded = out.build()
    assert decoded.ok.tolist() == [True, False, True]
    assert decoded.error.tolist() == [None, "too short", None]
    assert decoded.columns["a"].present.tolist() == [True, False, False]
    assert decoded.columns["b"].present.tolist() == [True, False, False]
    assert where.tolist() == [True, True, False]


def test_null_marks_json_null_on_present_rows() -> None:
    out = Builder(2, FIELDS)
    out.set("a", slice(None), np.array([5, 6]), null=np.array([False, True]))
    assert out.build().objects() == [{"a": 5}, {"a": None}]


def test_field_no_row_has_is_a_read_only_placeholder() -> None:
    col = Builder(3, FIELDS).build().columns["never"]
    assert col.present.tolist() == [False, False, False] and not col.present.flags.writeable


def test_columns_of_the_same_rows_share_a_mask_until_one_of_them_changes() -> None:
    out = Builder(4, FIELDS)
    rows = np.array([0, 2])
    out.set("a", rows, np.array([1, 3]))
    out.set("b", rows, np.array([0.5, 1.5]))
    assert out.columns["a"].present is out.columns["b"].present
    out.set("b", np.array([3]), np.array([9.5]))
    decoded = out.build()
    assert decoded.columns["a"].present.tolist() == [True, False, True, False]
    assert decoded.objects() == [{"a": 1, "b": 0.5}, {}, {"a": 3, "b": 1.5}, {"b": 9.5}]


def test_integer_column_keeps_a_narrow_type_and_widens_for_larger_values() -> None:
    out = Builder(3, FIELDS)
    out.set("a", slice(None), np.array([1, 2, 250], dtype=np.uint8))
    assert out.columns["a"].values.dtype == np.uint8
    out.set("a", np.array([1]), np.array([-70000]))
    decoded = out.build()
    assert decoded.objects() == [{"a": 1}, {"a": -70000}, {"a": 250}]
    assert type(decoded.objects()[2]["a"]) is int  # type: ignore[index]
