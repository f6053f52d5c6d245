"""Linear-time helpers for fixed-layout codecs: rows by fPort and length, bytes read without grouping.

A fixed-layout codec decides what a row is from its fPort and payload length alone. :class:`PortCodes`
maps every row's fPort to a small code with one lookup, so each frame type's rows are a boolean mask
(``code == k``) or an index array (``np.flatnonzero``); nothing sorts or groups the batch. The dominant
frame types are decoded over the whole batch straight from the buffer (:func:`peek`, or :func:`frames` when
every payload has the same length); rare ones are cut out with :func:`heads`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from .builder import Builder
from .lazy_columns import Later

__all__ = [
    "PortCodes",
    "at_least",
    "fail_by_length",
    "frames",
    "heads",
    "length_masks",
    "one_of",
    "payload_lists",
    "peek",
]


class PortCodes:
    """fPort -> small code (uint8) in one lookup per row: ``ports[i]`` -> ``i + 1``, any other fPort -> 0."""

    def __init__(self, ports: Iterable[int]) -> None:
        ports = list(ports)
        if min(ports) < 1:
            raise ValueError("fPorts must be positive")
        # Ports outside the table clip onto its first or last entry, both "any other fPort".
        self._table = np.zeros(max(ports) + 2, dtype=np.uint8)
        for i, port in enumerate(ports):
            self._table[port] = i + 1

    def __call__(self, f_port: np.ndarray) -> np.ndarray:
        return np.take(self._table, f_port, mode="clip")


def peek(buf: np.ndarray, offsets: np.ndarray, k: int) -> np.ndarray:
    """Byte ``k`` of every payload (uint8) in one gather; arbitrary where the payload is shorter."""
    if len(buf) <= k:
        return np.zeros(max(len(offsets) - 1, 0), dtype=np.uint8)
    return np.take(buf[k:], offsets[:-1], mode="clip")


def heads(buf: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """The first ``width`` bytes of the payloads that start at ``starts`` (each at least that long) as a
    ``(len(starts), width)`` uint8 array whose byte columns ``[:, j]`` are contiguous."""
    out = np.empty((width, len(starts)), dtype=np.uint8)
    for j in range(width):  # one gather per byte column, from the buffer shifted by j
        out[j] = buf[j:][starts]
    return out.T


def at_least(offsets: np.ndarray, k: int) -> np.ndarray:
    """Rows whose payload has at least ``k`` bytes (bool), computed in chunks: no array of all lengths."""
    return length_masks(offsets, (k,))[0]


def length_masks(offsets: np.ndarray, minimums: Sequence[int]) -> list[np.ndarray]:
    """For each of ``minimums``, the rows whose payload has at least that many bytes, in one chunked pass."""
    n = max(len(offsets) - 1, 0)
    masks = [np.empty(n, dtype=bool) for _ in minimums]
    for a in range(0, n, _CHUNK):
        b = min(a + _CHUNK, n)
        lens = offsets[a + 1 : b + 1] - offsets[a:b]
        for k, mask in zip(minimums, masks, strict=True):
            np.greater_equal(lens, k, out=mask[a:b])
    return masks


_CHUNK = 1 << 16


def frames(
    buf: np.ndarray, offsets: np.ndarray, width: int, exact: bool = False
) -> tuple[slice | np.ndarray, np.ndarray]:
    """The rows that hold a ``width``-byte frame (``exact``: exactly that long, else at least) and their first
    ``width`` bytes as a ``(rows, width)`` uint8 array. When every payload has exactly ``width`` bytes (they
    then lie back to back) the rows are ``slice(None)`` and the array is a zero-copy view of the buffer."""
    n = max(len(offsets) - 1, 0)
    start = int(offsets[0]) if len(offsets) else 0
    # n payloads spanning n * width bytes, none shorter than width: all exactly width
    if n and int(offsets[-1]) - start == n * width and bool(at_least(offsets, width).all()):
        return slice(None), buf[start : start + n * width].reshape(n, width)
    lens = np.diff(offsets)
    rows = np.flatnonzero(lens == width if exact else lens >= width)
    return rows, heads(buf, offsets[rows], width)


def one_of(values: np.ndarray, choices: Iterable[int], table: np.ndarray) -> np.ndarray:
    """``values`` is one of ``choices`` (``table``: the same as a lookup table): a few comparisons when the
    choices are few, else one lookup."""
    choices = list(choices)
    if len(choices) > 3:
        return np.take(table, values)
    mask = values == choices[0]
    for c in choices[1:]:
        mask |= values == c
    returned: np.ndarray = mask
    return returned


def payload_lists(buf: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> Later:
    """The payloads of ``rows`` as lists of byte values (built when needed; the bytes are copied now)."""
    starts, ends = offsets[rows], offsets[rows + 1]
    lens = ends - starts
    bounds = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lens, out=bounds[1:])
    index = np.repeat(starts - bounds[:-1], lens) + np.arange(bounds[-1], dtype=np.int64)
    return Later(_lists, buf[index].tobytes(), bounds)


def _lists(raw: bytes, bounds: np.ndarray) -> np.ndarray:
    edges = bounds.tolist()
    out = np.empty(len(edges) - 1, dtype=object)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        out[i] = list(raw[a:b])
    return out


def fail_by_length(
    out: Builder, rows: np.ndarray, f_port: np.ndarray, offsets: np.ndarray, reason: Callable[[int, int], str]
) -> None:
    """Fail ``rows`` (few: the failing ones) with ``reason(port, length)``, one write per distinct pair."""
    if len(rows) == 0:
        return
    ports, sizes = f_port[rows], offsets[rows + 1] - offsets[rows]
    pairs = np.unique(np.stack([ports, sizes], axis=1), axis=0)
    for port, size in pairs.tolist():
        out.fail(rows[(ports == port) & (sizes == size)], reason(port, size))
