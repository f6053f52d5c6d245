"""LazyColumn: writes replayed in order on the first read, deferred lookups and functions."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.codecs.lazy_columns import Later, LazyColumn, Lookup


def test_writes_are_replayed_once_in_order_with_their_masks() -> None:
    calls = []

    def texts(k: int) -> np.ndarray:
        calls.append(k)
        return np.array([f"t{k}", f"u{k}"], dtype=object)

    col = LazyColumn(4, np.ones(4, dtype=bool))
    col.write(slice(None), "all")
    col.write(np.array([1, 2]), Later(texts, 7), where=np.array([True, False]))
    assert calls == []
    assert col.values.tolist() == ["all", "t7", "all", "all"]
    assert col.values.tolist() == ["all", "t7", "all", "all"] and calls == [7]


def test_write_after_the_first_read_goes_straight_into_the_values() -> None:
    col = LazyColumn(3, np.ones(3, dtype=bool), dtype=np.int64)
    col.write(np.array([0]), np.array([5]))
    assert col.values.tolist() == [5, 0, 0]
    col.write(np.array([2]), np.array([7]))
    assert col.values.tolist() == [5, 0, 7]


def test_lookup_of_one_repeated_code_and_of_mixed_codes() -> None:
    table = np.array(["a", "b"], dtype=object)
    assert Lookup(table, np.array([1, 1, 1])).resolve().tolist() == ["b", "b", "b"]
    assert Lookup(table, np.array([1, 0])).resolve().tolist() == ["b", "a"]


def test_assigned_values_replace_pending_writes() -> None:
    col = LazyColumn(2, np.ones(2, dtype=bool))
    col.write(slice(None), "x")
    col.values = np.array(["y", "z"], dtype=object)
    assert col.values.tolist() == ["y", "z"]
