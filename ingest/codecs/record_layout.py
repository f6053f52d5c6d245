"""Vectorised decoding of record-structured payloads, shared by the Milesight, Elsys and Pepperl+Fuchs codecs.

Those payloads are sequences of records (``[channel][type][value]``, ``[type][value]``,
``[length][id][value]``) whose layout differs from frame to frame, but a fleet sends few distinct layouts.
:func:`decode_records` therefore groups rows by layout:

1. Rows are grouped by payload length into 2-D ``uint8`` arrays.
2. In each length group, the layout of one representative row is traced with the codec's classifier (the
   sequence of record positions, kinds and sizes up to the end, a stop record or a failure). All rows of the
   group are checked against that layout at once, reading the header bytes as columns at the traced positions
   (a known record matches by equal header bytes, other steps by an equal verdict of the classifier); the
   rows that match are decoded together with fixed column offsets. The next unmatched row becomes the next
   representative, a few times per group.
3. Rows left over (rare layouts, garbage) are decoded by :func:`walk`, which advances every remaining row in
   lock-step: one pass per record index, a position array moved by each row's record size.

Both paths use the same classifier and value readers of the codec, so they agree by construction (and
property tests check them against the per-message reference decoders). A record repeated in a frame
overwrites the earlier value: both paths read the *last* record of each kind.

The codec supplies (see :class:`RecordFormat`): ``header_len`` (the bytes that identify a record),
``classify(byte_at, pos, end) -> Step`` (``byte_at(j)`` is the column of header bytes at ``pos + j``;
``pos``/``end`` are arrays or scalars), ``read(kind, byte_at) -> Values`` (``byte_at(j)``: byte j of the
record) and ``message(code, detail)`` (the error text of failure codes >= 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .arrays import Builder
from .base import Codec, Decoded, FieldSpec

__all__ = [
    "ADVANCE",
    "PAD",
    "STOP",
    "ByteAt",
    "RecordFormat",
    "Step",
    "Values",
    "RecordCodec",
    "as_batch",
    "decode_records",
    "padded_copy",
    "port_length_groups",
    "text_at",
    "uint_at",
    "walk",
]

ADVANCE = 0  # record read, go on with the next one
STOP = 1  # record not in the table: parsing ends, the fields read so far are the result
# codes >= 2 are failures defined by each codec (truncated record, unsupported record, ...)

#: Zero bytes appended to the buffer so header reads never index past its end; what is read from the padding
#: belongs to rows the classifier marks as truncated and is never used.
PAD = 32

ByteAt = Callable[[int], np.ndarray]


@dataclass
class Step:
    """The classifier's verdict on the record under each row's position."""

    kind: np.ndarray  # record kind (>= 0) whose value is decoded; -1 for records that are only skipped
    size: np.ndarray  # total length of the record in bytes (>= 1 where code is ADVANCE)
    code: np.ndarray  # ADVANCE, STOP or a failure code >= 2
    detail: np.ndarray  # failure detail for the error text (e.g. the record kind or type byte)


@dataclass
class Values:
    """Decoded values of one record kind; ``bad`` marks rows whose value makes the row fail (``code``,
    ``detail``)."""

    fields: dict[str, np.ndarray]
    bad: np.ndarray | None = None
    code: int = 0
    detail: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class RecordFormat(Protocol):
    @property
    def n_kinds(self) -> int: ...

    @property
    def fields(self) -> tuple[FieldSpec, ...]: ...

    @property
    def layout_min_rows(self) -> int: ...

    @property
    def header_len(self) -> int: ...

    def classify(self, byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step: ...

    def read(self, kind: int, byte_at: ByteAt) -> Values: ...

    def message(self, code: int, detail: int) -> str: ...


class RecordCodec(Codec):
    """A codec of record-structured payloads: it describes its records (the :class:`RecordFormat` members) and
    decodes a batch with :func:`decode_records`."""

    layout_min_rows = 32  # smaller layout groups are decoded by the lock-step walk
    header_len: int

    @property
    def n_kinds(self) -> int:
        raise NotImplementedError

    def classify(self, byte_at: ByteAt, pos: np.ndarray | int, end: np.ndarray | int) -> Step:
        raise NotImplementedError

    def read(self, kind: int, byte_at: ByteAt) -> Values:
        raise NotImplementedError

    def message(self, code: int, detail: int) -> str:
        raise NotImplementedError

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        _, buf, offsets = as_batch(f_port, buf, offsets)
        return decode_records(self, buf, offsets)


def as_batch(
    f_port: np.ndarray | int, buf: np.ndarray | bytes, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalise a batch to (int64 f_port of length n, uint8 buf, int64 offsets)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    n = max(len(offsets) - 1, 0)
    buf = np.frombuffer(buf, dtype=np.uint8) if isinstance(buf, bytes | bytearray) else np.asarray(buf, np.uint8)
    ports = np.broadcast_to(np.asarray(f_port, dtype=np.int64), (n,))
    return ports, buf, offsets


def padded_copy(buf: np.ndarray) -> np.ndarray:
    """The buffer followed by :data:`PAD` zero bytes."""
    padded = np.zeros(len(buf) + PAD, dtype=np.uint8)
    padded[: len(buf)] = buf
    return padded


def decode_records(fmt: RecordFormat, buf: np.ndarray, offsets: np.ndarray, max_layouts: int = 8) -> Decoded:
    """Decode a batch of record-structured payloads (see the module docstring). Groups smaller than
    ``fmt.layout_min_rows`` rows go to the lock-step walk."""
    n = max(len(offsets) - 1, 0)
    out = Builder(n, fmt.fields)
    padded = padded_copy(buf)
    leftover: list[np.ndarray] = []
    for rows, length, data in _length_groups(padded, offsets):
        if length == 0:
            continue
        sel = np.arange(len(data))
        for _ in range(max_layouts):
            if len(sel) < max(fmt.layout_min_rows, 1):
                break
            sub = data if len(sel) == len(data) else data[sel]
            match = _decode_layout(fmt, out, rows, sel, sub, length)
            if match.all():
                sel = sel[:0]
                break
            before = len(sel)
            sel = sel[~match]
            if before - len(sel) < before // 32:  # layouts too scattered: leave the rest to the walk
                break
        if len(sel):
            leftover.append(sel if isinstance(rows, slice) else rows[sel])
    if leftover:
        _decode_walk(fmt, out, padded, offsets, np.sort(np.concatenate(leftover)))
    return out.build()


Group = tuple[slice | np.ndarray, int, np.ndarray]
PortGroup = tuple[slice | np.ndarray, int, int, np.ndarray]


def _length_groups(padded: np.ndarray, offsets: np.ndarray) -> list[Group]:
    """(rows, length, (rows, length) uint8 array) per payload length; rows ascending."""
    return [(rows, length, data) for rows, _, length, data in port_length_groups(padded, offsets)]


def port_length_groups(padded: np.ndarray, offsets: np.ndarray, ports: np.ndarray | None = None) -> list[PortGroup]:
    """Rows of equal (fPort, length) as ``(rows, f_port, length, (rows, length) uint8 array)``, rows
    ascending; ``rows`` is ``slice(0, n)`` when the group is the whole batch. ``padded`` is the buffer plus
    :data:`PAD` zero bytes (rows are cut from it as windows, which copies whole rows at once). Without
    ``ports`` the groups are by length only and their fPort is 0."""
    n = max(len(offsets) - 1, 0)
    if n == 0:
        return []
    starts = offsets[:-1]
    lens = np.diff(offsets)
    ports = np.zeros(n, dtype=np.int64) if ports is None else np.asarray(ports, dtype=np.int64)
    p0, l0 = int(ports[0]), int(lens[0])
    if bool((lens == l0).all()) and bool((ports == p0).all()):
        if l0 and int(offsets[-1] - offsets[0]) == n * l0:
            start = int(offsets[0])
            return [(slice(0, n), p0, l0, padded[start : start + n * l0].reshape(n, l0))]
        return [(slice(0, n), p0, l0, _gather(padded, starts, l0))]
    key: np.ndarray = (ports << 32) | (lens & 0xFFFFFFFF)
    if int(lens.max()) < 256 and int(ports.min()) >= 0 and int(ports.max()) < 256:
        key = ((ports << 8) | lens).astype(np.uint16)  # small keys sort by radix
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    cuts = np.flatnonzero(sorted_key[1:] != sorted_key[:-1]) + 1
    groups: list[PortGroup] = []
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), n], strict=True):
        rows = order[a:b]
        length = int(lens[rows[0]])
        groups.append((rows, int(ports[rows[0]]), length, _gather(padded, starts[rows], length)))
    return groups


def _flat(padded: np.ndarray, pos: np.ndarray) -> ByteAt:
    """Bytes at ``pos + j`` of a flat buffer."""
    return lambda j: padded[pos + j]


def _column(data: np.ndarray, p: int, zeros: np.ndarray) -> ByteAt:
    """Column ``p + j`` of a 2-D array; zeros past its last column."""
    width = data.shape[1]
    return lambda j: data[:, p + j] if p + j < width else zeros


def _gather(padded: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    if length == 0:
        return np.empty((len(starts), 0), dtype=np.uint8)
    returned: np.ndarray = np.lib.stride_tricks.sliding_window_view(padded, length)[starts]
    return returned


def _trace(fmt: RecordFormat, row: np.ndarray) -> list[tuple[int, Step]]:
    """The steps of one row's walk: (position, verdict) up to the end, a stop or a failure."""
    length = len(row)
    padded = np.zeros(length + PAD, dtype=np.uint8)
    padded[:length] = row
    steps: list[tuple[int, Step]] = []
    p = 0
    while p < length:
        step = fmt.classify(_column(padded[None, :], p, padded[:1]), p, length)
        steps.append((p, step))
        if int(step.code[0]) != ADVANCE:
            break
        p += int(step.size[0])
    return steps


def _decode_layout(
    fmt: RecordFormat, out: Builder, rows: slice | np.ndarray, sel: np.ndarray, sub: np.ndarray, length: int
) -> np.ndarray:
    """Decode the rows of ``sub`` that share the layout of its first row; returns the match mask."""
    m = len(sub)
    zeros = np.zeros(m, dtype=np.uint8)
    steps = _trace(fmt, sub[0])
    match = np.ones(m, dtype=bool)
    rep = sub[0]
    for p, ref in steps:
        code = int(ref.code[0])
        if code == ADVANCE and int(ref.kind[0]) >= 0:
            # a known record: equal header bytes give an equal verdict, and are cheaper to compare
            for j in range(fmt.header_len):
                match &= sub[:, p + j] == rep[p + j]
            continue
        st = fmt.classify(_column(sub, p, zeros), p, length)
        match &= st.code == code
        if code == ADVANCE:
            match &= (st.kind == ref.kind[0]) & (st.size == ref.size[0])
        elif code != STOP:
            match &= st.detail == ref.detail[0]
    full = bool(match.all())
    hit = sel if full else sel[match]
    target: slice | np.ndarray
    if isinstance(rows, slice):  # the group is the whole batch: group index == row index
        target = rows if full and m == rows.stop else hit
    else:
        target = rows[hit]
    last_code = int(steps[-1][1].code[0])
    if last_code >= 2:
        out.fail(target, fmt.message(last_code, int(steps[-1][1].detail[0])))
        return match
    rec = sub if full else sub[match]
    last = {int(st.kind[0]): p for p, st in steps if int(st.code[0]) == ADVANCE and int(st.kind[0]) >= 0}
    for kind, p in last.items():
        vals = fmt.read(kind, _column(rec, p, zeros))
        for name, v in vals.fields.items():
            out.set(name, target, v)
        if vals.bad is not None and vals.bad.any():
            t = np.arange(len(rec))[vals.bad] if isinstance(target, slice) else target[vals.bad]
            _fail(out, fmt, t, np.full(len(t), vals.code), vals.detail[vals.bad])
    return match


def walk(
    fmt: RecordFormat, padded: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lock-step walk of m rows: (last record position per kind (k, m), -1 where none; failure code (m,);
    failure detail (m,))."""
    m = len(starts)
    last = np.full((fmt.n_kinds, m), -1, dtype=np.int64)
    flat_last = last.reshape(-1)
    fail = np.zeros(m, dtype=np.int64)
    detail = np.zeros(m, dtype=np.int64)
    idx = np.flatnonzero(ends > starts)
    pos, end = starts[idx], ends[idx]
    for _ in range(int((ends - starts).max(initial=0)) + 1):
        if idx.size == 0:
            break
        step = fmt.classify(_flat(padded, pos), pos, end)
        go = step.code == ADVANCE
        keep = go & (step.kind >= 0)
        flat_last[step.kind[keep] * m + idx[keep]] = pos[keep]
        bad = step.code >= 2
        fail[idx[bad]] = step.code[bad]
        detail[idx[bad]] = step.detail[bad]
        pos = pos + step.size
        more = go & (pos < end)
        idx, pos, end = idx[more], pos[more], end[more]
    return last, fail, detail


def _decode_walk(fmt: RecordFormat, out: Builder, padded: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> None:
    last, fail, detail = walk(fmt, padded, offsets[rows], offsets[rows + 1])
    for kind in range(fmt.n_kinds):
        has = np.flatnonzero(last[kind] >= 0)
        if has.size == 0:
            continue
        q = last[kind][has]
        vals = fmt.read(kind, _flat(padded, q))
        for name, v in vals.fields.items():
            out.set(name, rows[has], v)
        if vals.bad is not None:
            bad = vals.bad & (fail[has] == 0)  # a row that failed while walking keeps that reason
            fail[has[bad]] = vals.code
            detail[has[bad]] = vals.detail[bad]
    failed = np.flatnonzero(fail)
    _fail(out, fmt, rows[failed], fail[failed], detail[failed])


def _fail(out: Builder, fmt: RecordFormat, rows: np.ndarray, codes: np.ndarray, details: np.ndarray) -> None:
    """Mark rows failed with ``fmt.message(code, detail)``, one assignment per distinct text."""
    if rows.size == 0:
        return
    combo = (codes.astype(np.int64) << 32) | (details.astype(np.int64) & 0xFFFFFFFF)
    uniq, inverse = np.unique(combo, return_inverse=True)
    for j, c in enumerate(uniq.tolist()):
        out.fail(rows[inverse.reshape(-1) == j], fmt.message(c >> 32, c & 0xFFFFFFFF))


def uint_at(byte_at: ByteAt, start: int, width: int, big_endian: bool) -> np.ndarray:
    """Unsigned integers of ``width`` bytes at record offset ``start`` (int64)."""
    v = byte_at(start).astype(np.int64)
    for k in range(1, width):
        b = byte_at(start + k).astype(np.int64)
        v = (v << 8) | b if big_endian else v | (b << (8 * k))
    return v


def text_at(byte_at: ByteAt, start: int, width: int) -> np.ndarray:
    """Latin-1 text of ``width`` bytes at record offset ``start``, ending at the first NUL (numpy ``U``)."""
    chars = np.stack([byte_at(start + k) for k in range(width)], axis=1).astype(np.uint32)
    chars[np.cumsum(chars == 0, axis=1) > 0] = 0
    return np.ascontiguousarray(chars).view(f"U{width}").reshape(-1)
