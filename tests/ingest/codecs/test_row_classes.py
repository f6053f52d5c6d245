"""Row helpers of the fixed-layout codecs: fPort codes, direct byte reads, frames, failures by length."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.codecs.base import FieldSpec
from stadtpuls.ingest.codecs.builder import Builder
from stadtpuls.ingest.codecs.row_classes import (
    PortCodes,
    at_least,
    fail_by_length,
    frames,
    heads,
    length_masks,
    one_of,
    payload_lists,
    peek,
)


def batch(*payloads: bytes, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[pad], pad + np.cumsum([len(p) for p in payloads])]).astype(np.int64)
    return np.frombuffer(b"\xa5" * pad + b"".join(payloads) + b"\xa5" * pad, np.uint8), offsets


def test_port_codes_map_listed_ports_and_everything_else_to_zero() -> None:
    codes = PortCodes((6, 7))
    assert codes(np.array([6, 7, 0, -5, 5, 8, 9, 300, 1 << 40])).tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0]


def test_peek_reads_byte_k_of_each_payload() -> None:
    buf, offsets = batch(b"\x01\x02", b"\x03\x04\x05", b"\x06\x07", pad=2)
    assert peek(buf, offsets, 0).tolist() == [1, 3, 6]
    assert peek(buf, offsets, 1).tolist() == [2, 4, 7]
    assert peek(*batch(b"", b""), 0).tolist() == [0, 0]


def test_heads_cuts_the_first_bytes_of_chosen_rows() -> None:
    buf, offsets = batch(b"abc", b"defg", b"hi", b"jklm", pad=1)
    d = heads(buf, offsets[[1, 3]], 3)
    assert d.shape == (2, 3) and [bytes(r) for r in d] == [b"def", b"jkl"]


def test_frames_is_a_zero_copy_view_when_every_payload_has_the_width() -> None:
    buf, offsets = batch(b"abc", b"def", pad=2)
    rows, d = frames(buf, offsets, 3)
    assert rows == slice(None) and np.shares_memory(d, buf) and [bytes(r) for r in d] == [b"abc", b"def"]


def test_frames_picks_long_enough_or_exact_rows() -> None:
    buf, offsets = batch(b"abc", b"de", b"fghi")
    rows, d = frames(buf, offsets, 3)
    assert isinstance(rows, np.ndarray) and rows.tolist() == [0, 2] and [bytes(r) for r in d] == [b"abc", b"fgh"]
    rows, d = frames(buf, offsets, 3, exact=True)
    assert isinstance(rows, np.ndarray) and rows.tolist() == [0] and [bytes(r) for r in d] == [b"abc"]


def test_one_of_by_comparisons_and_by_table() -> None:
    values = np.array([1, 5, 9, 5], dtype=np.uint8)
    table = np.zeros(256, dtype=bool)
    table[[5, 9, 11, 12]] = True
    assert one_of(values, (5, 9), table).tolist() == [False, True, True, True]
    assert one_of(values, (5, 9, 11, 12), table).tolist() == [False, True, True, True]


def test_payload_lists_copies_the_bytes_now_and_builds_lists_later() -> None:
    raw = bytearray(b"\x01\x02\x03\x04\x05")
    buf = np.frombuffer(raw, np.uint8)
    later = payload_lists(buf, np.array([0, 2, 2, 5]), np.array([0, 1, 2]))
    raw[0] = 99
    assert later.resolve().tolist() == [[1, 2], [], [3, 4, 5]]


def test_fail_by_length_gives_each_row_its_own_length_in_the_reason() -> None:
    out = Builder(4, (FieldSpec("x", "int"),))
    offsets = np.array([0, 3, 12, 16, 19])  # lengths 3, 9, 4, 3
    fail_by_length(out, np.array([0, 2, 3]), np.array([6, 6, 7, 6]), offsets, lambda p, n: f"{p}:{n}")
    assert out.build().error.tolist() == ["6:3", None, "7:4", "6:3"]


def test_at_least_over_more_rows_than_one_chunk() -> None:
    lens = np.tile(np.array([0, 1, 2, 5]), 50_000)
    offsets = np.concatenate([[7], 7 + np.cumsum(lens)])
    assert at_least(offsets, 2).tolist() == (lens >= 2).tolist()
    assert at_least(np.array([0]), 1).shape == (0,)
    some, two = length_masks(offsets, (1, 2))
    assert some.tolist() == (lens >= 1).tolist() and two.tolist() == (lens >= 2).tolist()


def test_frames_of_equal_total_size_but_unequal_lengths_are_gathered() -> None:
    buf, offsets = batch(b"ab", b"cdef")
    rows, d = frames(buf, offsets, 3)
    assert isinstance(rows, np.ndarray) and rows.tolist() == [1] and [bytes(r) for r in d] == [b"cde"]
