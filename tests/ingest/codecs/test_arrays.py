"""Batch helpers: numbers read from the bytes of each row, in row order or from a column-wise gather."""

from __future__ import annotations

import numpy as np
import pytest

from stadtpuls.ingest.codecs.arrays import field, i16be, i32le, u16be


@pytest.mark.parametrize("dtype", [">u2", "<u2", ">i2", "<i2", ">u4", "<u4", ">i4", "<i4", "u1", "i1"])
def test_field_of_column_ordered_bytes_equals_the_row_ordered_view(dtype: str) -> None:
    rows = np.random.default_rng(5).integers(0, 256, (200, 9)).astype(np.uint8)
    by_column = np.asfortranarray(rows)
    for start in (0, 3, 9 - np.dtype(dtype).itemsize):
        expected = rows[:, start : start + np.dtype(dtype).itemsize].copy().view(dtype)[:, 0]
        assert field(by_column, start, dtype).tolist() == expected.tolist()
        assert field(rows, start, dtype).tolist() == expected.tolist()


def test_integer_readers_sign_and_byte_order() -> None:
    a = np.array([[0xFF, 0xFE, 0x01, 0x00]], dtype=np.uint8)
    assert i16be(a, 0).tolist() == [-2]
    assert u16be(a, 0).tolist() == [0xFFFE]
    assert i32le(a, 0).tolist() == [0x0001FEFF]
    assert i32le(np.asfortranarray(np.array([[0xFF, 0xFF, 0xFF, 0xFF]], dtype=np.uint8)), 0).tolist() == [-1]
