"""Fixed-layout frames described once: the batch decoder, the per-message decoder and the encoder of the
Netvox, Nwave, Bosch and Dragino codecs all derive from one :class:`Layout`.

A fixed-layout frame is chosen by its fPort (and within an fPort by conditions on its bytes), and every
field sits at a fixed place. A layout is data:

* :class:`Port` per fPort: the length rule (at least ``need`` bytes, or exactly), the frame's ``type`` text,
  whether the payload itself is the output (``raw``), rows that fail on a byte condition (``fail``) and the
  encoder's frame size;
* :class:`Group` s of fields with the fPorts and byte conditions (:func:`is_`, :func:`not_`,
  :class:`Length`) under which a frame has them;
* fields (:class:`Num`, :class:`Flag`, :class:`Label`, :class:`Table`, :class:`Marker`, :class:`Hex`,
  :class:`Version`; a codec may add its own kind with the same three methods): where the value sits (byte
  offset, number type, mask, shift), how raw bits become the value (``(raw * mul + add) / div``, a table)
  and the conditions under which the frame has it. Each kind reads a batch (``read``), one payload
  (``row_reader``) and writes frames (``write``); the kinds live in :mod:`~ingest.codecs.fixed_fields`, the
  conditions and the byte views in :mod:`~ingest.codecs.fixed_view`.

Decoding a batch (:meth:`Layout.decode`):

1. fPorts become small codes in one lookup (:class:`~ingest.codecs.row_classes.PortCodes`); rows of other
   fPorts fail (or decode to ``{}``), rows too short (or of the wrong length) fail with the length reason.
2. *Common* groups (the bulk of the traffic) are read over the whole batch, straight from the buffer (or
   from the ``(n, width)`` frames when every frame has one width), with a ``where`` mask per condition:
   no gather, no scatter. A field that several common groups read alike (same key and bytes, nulls of their
   own) is read once and written once, where any of them holds.
3. *Sparse* groups (rare frame types) are cut out of the batch and read on their own rows.

Encoding (:meth:`Layout.encode`) writes the fields in the order of their group, each where its conditions
hold on the bytes written so far: selector fields (a command byte, a mode) come first; the codec may write
selector bytes that no field holds beforehand (``prepare``).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arrays import lut, pack, row_count, wrong_length
from .base import Decoded, EncodeError, FieldSpec
from .builder import Builder
from .encoding import batch_size, field_values, pack_lists
from .fixed_fields import ABSENT, OPTIONAL, REQUIRED, Field, Flag, Hex, Label, Marker, Num, Table, Version
from .fixed_view import Cond, Is, Length, View, holds, is_, not_
from .lazy_columns import Lookup
from .row_classes import PortCodes, fail_by_length, frames, length_masks, one_of, payload_lists

__all__ = [
    "OPTIONAL",
    "REQUIRED",
    "Cond",
    "Field",
    "Flag",
    "Group",
    "Hex",
    "Is",
    "Label",
    "Layout",
    "Length",
    "Marker",
    "Num",
    "Port",
    "Table",
    "Version",
    "View",
    "is_",
    "not_",
]


@dataclass(frozen=True)
class Port:
    """An fPort's frames: at least ``need`` bytes (``exact``: exactly), their ``type`` text, ``raw``: the
    payload is the output (a list of byte values), ``fail``: (condition, reason) of rows that decode to an
    error, ``size``: the bytes ``encode()`` writes (default ``need``)."""

    port: int
    need: int = 0
    exact: bool = False
    type: str | None = None
    raw: bool = False
    fail: tuple[tuple[Cond, str], ...] = ()
    size: int | None = None


@dataclass(frozen=True)
class Group:
    """Fields that the frames of ``ports`` have where ``when`` holds. ``sparse``: a rare frame type, read
    on its own rows rather than over the whole batch."""

    ports: tuple[int, ...]
    fields: tuple[Field, ...]
    when: tuple[Cond, ...] = ()
    sparse: bool = False

    @property
    def extent(self) -> int:
        return max([f.extent for f in self.fields] + [c.at + 1 for c in self.when if isinstance(c, Is)])


@dataclass
class Layout:
    """A codec's fixed-layout frames. ``unknown_port``: the error text of any other fPort (None: such rows
    decode to ``{}``); ``width``: every frame is read through its first ``width`` bytes (the length rules
    are then the same for every fPort); ``type_key``/``raw_key``: the output keys of a frame's type text
    and raw payload."""

    ports: tuple[Port, ...]
    groups: tuple[Group, ...]
    unknown_port: str | None = None
    width: int | None = None
    type_key: str = "type"
    raw_key: str = "bytes"
    _by_port: dict[int, Port] = field(init=False)

    def __post_init__(self) -> None:
        common = {p for g in self.groups if not g.sparse for p in g.ports}
        sparse = {p for g in self.groups if g.sparse for p in g.ports} | {p.port for p in self.ports if p.raw}
        # fPort codes: those whose frames are only read over the whole batch first, so the fPorts with rare
        # frame types (whose rows are gathered) are the codes above them
        ordered = sorted(self.ports, key=lambda p: p.port in sparse)
        self._by_port = {p.port: p for p in ordered}
        self._codes = PortCodes(self._by_port)
        self._code_of = {p.port: i + 1 for i, p in enumerate(ordered)}
        self._n_plain = sum(p.port not in sparse for p in ordered)
        self._need = np.array([0, *(p.need for p in ordered)])
        # fPorts with rare frame types have their rows' lengths checked one by one (see _view)
        self._common_needs = sorted({p.need for p in ordered if p.need > 0 and p.port in common - sparse})
        tested = [c for g in self.groups if not g.sparse for f in g.fields for c in f.when if isinstance(c, Length)]
        self._lengths = sorted(set(self._common_needs) | {c.at_least for c in tested})
        types = [p.type for p in ordered]
        self._types = lut([None, *types], len(types) + 1) if any(types) else None
        self._plans: dict[tuple[int, int], tuple[list[_Step], list[int], bool]] = {}
        # The common groups' fields, those that several groups read alike (same key, same bytes, same
        # values; their nulls may differ) together: each is read over the whole batch once.
        self._common: list[list[tuple[int, Group, Field]]] = []
        for k, g in enumerate(self.groups):
            for f in () if g.sparse else g.fields:
                alike = [m for m in self._common if m[0][2].reads_like(f)]
                if alike:
                    alike[0].append((k, g, f))
                else:
                    self._common.append([(k, g, f)])
        self._chosen: dict[tuple[int, ...], list[tuple[str, Callable[[bytes], Any] | None, bool]]] = {}

    def port(self, f_port: int) -> Port | None:
        return self._by_port.get(f_port)

    def _reason(self, port: int, length: int) -> str:
        p = self._by_port[port]
        if self.width:
            return wrong_length(length, str(self.width))
        return wrong_length(length, str(p.need) if p.exact else f"at least {p.need}")

    def _codes_of(self, ports: Sequence[int]) -> tuple[int, ...]:
        return tuple(sorted(self._code_of[p] for p in ports))

    # --- batch decoding -----------------------------------------------------------------------------------

    def decode(self, fields: Sequence[FieldSpec], f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> Decoded:
        offsets = np.asarray(offsets, dtype=np.int64)
        buf = np.asarray(buf, dtype=np.uint8)
        port = np.asarray(f_port, dtype=np.int64)
        n = row_count(offsets)
        out = Builder(n, fields)
        code = self._codes(port)
        if self.unknown_port is not None:
            out.fail(slice(None), self.unknown_port, where=code == 0)
        if self._types is not None:
            out.set(self.type_key, slice(None), Lookup(self._types, code), where=code != 0)
        view, code, rare_rows = self._view(out, port, code, buf, offsets)
        rare, rare_code = rare_rows[:2] if rare_rows is not None else (None, None)
        if view is None:
            return out.build()
        masks: dict[tuple[int, ...], np.ndarray | None] = {}
        self._decode_common(out, view, code, masks)
        pool = self._pool(view) if rare is None else None
        for group in self.groups:
            if group.sparse:
                sub = self._sparse_rows(pool or view, group, code, rare_rows, masks)
                if sub is not None:
                    for f in group.fields:
                        f.put(out, sub, sub.test(f.when))
        for p in self.ports:
            k = self._code_of[p.port]
            for cond, reason in p.fail:
                hit = view.test((cond,))
                where = code == k
                out.fail(view.rows, reason, where=where if hit is None else where & hit)
            if p.raw:
                rows = np.flatnonzero(code == k) if rare is None else rare[rare_code == k]
                if len(rows):
                    out.set(self.raw_key, rows, payload_lists(buf, offsets, rows))
        return out.build()

    def _pool(self, view: View) -> View | None:
        """Frames of one width whose sparse groups all select on the same bits (one fPort, a mode byte): the
        rows of any of them, cut out together (None: each group cuts its own rows)."""
        sparse = [g for g in self.groups if g.sparse]
        if not sparse or len(self.ports) != 1 or self.unknown_port is None:
            return None
        conds = [g.when[0] if len(g.when) == 1 else None for g in sparse]
        first = conds[0]
        if not isinstance(first, Is) or any(
            not isinstance(c, Is) or c.negate or (c.at, c.mask) != (first.at, first.mask) for c in conds
        ):
            return None
        values = [v for c in conds if isinstance(c, Is) for v in c.values]
        # the rows of any group, and maybe a few more: each group selects its own among them
        any_of = view.test((Is(first.at, tuple(range(min(values), max(values) + 1)), first.mask),))
        assert any_of is not None
        return view.take(any_of, max(g.extent for g in sparse))

    def _sparse_rows(
        self,
        view: View,
        group: Group,
        code: np.ndarray,
        rare_rows: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        masks: dict[tuple[int, ...], np.ndarray | None],
    ) -> View | None:
        """The rows of a sparse group, gathered (None: no row); ``rare_rows``: see :meth:`_view`."""
        codes = self._codes_of(group.ports)
        if rare_rows is not None:  # pick from the rows of the fPorts with rare frame types
            rare, rare_code, rare_starts = rare_rows
            # (positions, then two takes: cheaper than two boolean selections by the same mask)
            pick = np.flatnonzero(_code_mask(rare_code, codes))
            if not len(pick):
                return None
            sub = view.take_rows(rare.take(pick), group.extent, rare_starts.take(pick))
            cond = sub.test(group.when)
            if cond is None:
                return sub
            return sub.take(cond, group.extent) if cond.any() else None
        mask = _both(self._port_mask(masks, code, group.ports), view.test(group.when))
        if mask is None:
            mask = np.ones(len(code), dtype=bool)
        return view.take(mask, group.extent) if mask.any() else None

    def _view(
        self, out: Builder, port: np.ndarray, code: np.ndarray, buf: np.ndarray, offsets: np.ndarray
    ) -> tuple[View | None, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """The view of the frames, the fPort codes of its rows and (payloads of several widths) the rows of
        fPorts with rare frame types long enough for them, with their codes and where their payloads start.
        Rows too short (or of the wrong length) fail here; build() clears their columns."""
        if self.width is not None:
            exact = self.ports[0].exact
            rows, d = frames(buf, offsets, self.width, exact=exact)
            if isinstance(rows, np.ndarray):  # some rows have another length
                lens = np.diff(offsets)
                wrong = (code != 0) & (lens != self.width if exact else lens < self.width)
                fail_by_length(out, np.flatnonzero(wrong), port, offsets, self._reason)
                code = code[rows]
            return (View(rows, offsets, data=d) if len(d) else None), code, None
        # fPorts of common groups: length masks over the whole batch, in one chunked pass (with the lengths
        # that the common groups' fields test); fPorts with rare frame types: the lengths of their rows
        view = View(slice(None), offsets, buf=buf)
        if self._lengths == [1]:  # not empty: one comparison
            view._long[1] = offsets[1:] != offsets[:-1]
        else:
            for k, mask in zip(self._lengths, length_masks(offsets, self._lengths), strict=True):
                view._long[k] = mask
        for need in self._common_needs:
            codes = self._codes_of(
                [p.port for p in self.ports if p.need == need and self._code_of[p.port] <= self._n_plain]
            )
            short = _code_mask(code, codes) & ~view._long[need]
            if short.any():
                fail_by_length(out, np.flatnonzero(short), port, offsets, self._reason)
        rare = np.flatnonzero(code > self._n_plain)
        rare_code = code[rare]
        starts = offsets[rare]
        if len(rare):  # (short rows of common fPorts fail again here, for the same reason)
            short = offsets[rare + 1] - starts < np.take(self._need, rare_code)
            if short.any():
                fail_by_length(out, rare[short], port, offsets, self._reason)
                keep = ~short
                rare, rare_code, starts = rare[keep], rare_code[keep], starts[keep]
        return view, code, (rare, rare_code, starts)

    def _port_mask(
        self, masks: dict[tuple[int, ...], np.ndarray | None], code: np.ndarray, ports: tuple[int, ...]
    ) -> np.ndarray | None:
        """Rows of ``ports``; None (no mask) when those are all the fPorts and rows of others have failed."""
        if ports not in masks:
            every = self.unknown_port is not None and set(ports) == set(self._by_port)
            masks[ports] = None if every else _code_mask(code, self._codes_of(ports))
        return masks[ports]

    def _decode_common(
        self, out: Builder, view: View, code: np.ndarray, masks: dict[tuple[int, ...], np.ndarray | None]
    ) -> None:
        """The common groups' fields over the whole batch; a field that several groups read alike (see
        :attr:`_common`) is read once and written once, where any of them holds."""
        group_masks: dict[int, tuple[bool, np.ndarray | None]] = {}  # (the group has rows, its mask)
        shared: dict[tuple[int, tuple[Cond, ...]], np.ndarray | None] = {}

        def rows_of(k: int, group: Group, f: Field) -> tuple[bool, np.ndarray | None]:
            if k not in group_masks:
                mask = self._port_mask(masks, code, group.ports)
                if mask is not None and not mask.any():
                    group_masks[k] = (False, None)
                else:
                    group_masks[k] = (True, _both(mask, view.test(group.when)))
            has, mask = group_masks[k]
            if not has:
                return False, None
            if (k, f.when) not in shared:
                shared[(k, f.when)] = _both(mask, view.test(f.when))
            return True, shared[(k, f.when)]

        for members in self._common:
            if len(members) == 1:
                has, where = rows_of(*members[0])
                if has:
                    members[0][2].put(out, view, where)
                continue
            parts: list[tuple[np.ndarray | None, np.ndarray | None]] = []
            for k, group, f in members:
                has, where = rows_of(k, group, f)
                if not has:
                    continue
                where = _both(where, f.present(view))
                if where is not None and not where.any():
                    continue
                parts.append((where, f.null_of(view)))
            if not parts:
                continue
            first = members[0][2]
            # each group's nulls on its own rows only: a later write of other rows (a sparse group's) keeps
            # its values non-null
            where = None if any(w is None for w, _ in parts) else functools.reduce(operator.or_, [w for w, _ in parts])
            pieces = [nl if w is None else nl & w for w, nl in parts if nl is not None]
            null = functools.reduce(operator.or_, pieces) if pieces else None
            out.set(first.name, view.rows, first.read(view), where=where, null=null)

    # --- per-message decoding -----------------------------------------------------------------------------

    def decode_row(self, fields: Sequence[FieldSpec], f_port: int, b: bytes) -> dict[str, Any]:
        p = self._by_port.get(f_port)
        if p is None:
            return {} if self.unknown_port is None else {"errors": [self.unknown_port]}
        need = self.width or p.need
        if len(b) < need or (p.exact and len(b) != need):
            return {"errors": [self._reason(f_port, len(b))]}
        for cond, reason in p.fail:
            if holds(cond, b):
                return {"errors": [reason]}
        plan = self._plans.get((id(fields), f_port))
        if plan is None:
            plan = self._plans[(id(fields), f_port)] = self._plan(fields, p)
        steps, positions, by_length = plan
        # What a frame has depends only on the bytes its conditions read (and, with length conditions, its
        # length): the steps that apply are worked out once per distinct such bytes.
        size = len(b) if by_length else min(len(b), positions[-1] + 1 if positions else 0)
        key = (id(steps), size, *[b[i] for i in positions if i < size])
        chosen = self._chosen.get(key)
        if chosen is None:
            chosen = [
                (name, f, null is not None and null(b)) for name, f, holds, null in steps if holds is None or holds(b)
            ]
            if len(self._chosen) < _CHOSEN_MAX:
                self._chosen[key] = chosen
        obj: dict[str, Any] = {}
        for name, f, null in chosen:
            if f is None:
                obj[name] = p.type if name == self.type_key else list(b)
            else:
                value = f(b)
                if value is not ABSENT:
                    obj[name] = None if null else value
        return obj

    def _plan(self, fields: Sequence[FieldSpec], p: Port) -> tuple[list[_Step], list[int], bool]:
        """What the frames of fPort ``p`` may hold, in the order of the codec's fields, the bytes their
        conditions read and whether a condition tests the length."""
        steps: list[_Step] = []
        if p.type is not None:
            steps.append((self.type_key, None, None, None))
        if p.raw:
            steps.append((self.raw_key, None, None, None))
        for g in self.groups:
            if p.port in g.ports:
                steps += [(f.name, f.row_reader, _check((*g.when, *f.when)), _check(f.null_when)) for f in g.fields]
        rank = {spec.name: i for i, spec in enumerate(fields)}
        conds = [
            c
            for g in self.groups
            if p.port in g.ports
            for c in (*g.when, *(c for f in g.fields for c in (*f.when, *f.null_when)))
        ]
        positions = sorted({c.at for c in conds if isinstance(c, Is)})
        by_length = any(isinstance(c, Length) for c in conds)
        return sorted(steps, key=lambda step: rank[step[0]]), positions, by_length

    # --- encoding -----------------------------------------------------------------------------------------

    def encode(
        self,
        codec_id: str,
        f_port: int,
        columns: Mapping[str, Any],
        prepare: Callable[[np.ndarray, Mapping[str, Any], int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``prepare(frames, columns, n)`` writes selector bytes that no field holds."""
        p = self._by_port.get(f_port)
        if p is None:
            raise EncodeError(codec_id, "f_port", f"unknown FPort {f_port}")
        n = batch_size(columns)
        if p.raw:
            return pack_lists(codec_id, self.raw_key, field_values(codec_id, columns, self.raw_key, n))
        groups = [g for g in self.groups if f_port in g.ports]
        size = self.width or p.size or p.need
        for g in groups:
            for f in g.fields:
                if f.encoded and any(isinstance(c, Length) for c in f.when) and f.name in columns:
                    size = max(size, f.extent)
        frames = np.zeros((n, size), dtype=np.uint8)
        if prepare is not None:
            prepare(frames, columns, n)
        for g in groups:
            for f in g.fields:
                if f.encoded and (f.name in columns or not any(isinstance(c, Length) for c in f.when)):
                    self._encode_field(codec_id, frames, columns, n, f, (*g.when, *f.when))
        return pack([(np.arange(n), frames)], n)

    @staticmethod
    def _encode_field(
        codec_id: str, frames: np.ndarray, columns: Mapping[str, Any], n: int, f: Field, when: tuple[Cond, ...]
    ) -> None:
        rows = np.ones(n, dtype=bool)
        for c in (*when, *f.null_when):
            if isinstance(c, Is):
                hit = c.test(frames[:, c.at] & np.uint8(c.mask))
                rows &= ~hit if c in f.null_when else hit
        if not rows.any():
            return
        if f.name in columns:
            values = field_values(codec_id, columns, f.name, n)[rows]
        elif f.default is OPTIONAL:
            return
        elif f.default is REQUIRED:
            raise EncodeError(codec_id, f.name, "missing")
        else:
            values = np.full(int(rows.sum()), f.default)
        idx = np.flatnonzero(rows)
        if not isinstance(f, Label | Marker):  # None: the row has no such value
            given = np.array([v is not None for v in np.asarray(values, dtype=object).tolist()], dtype=bool)
            if not given.all():
                idx, values = idx[given], values[given]
        if len(idx):
            f.write(codec_id, frames, idx, values)


_CHOSEN_MAX = 1 << 16  # distinct condition bytes remembered by the per-message decoder
_Check = Callable[[bytes], bool]
_Step = tuple[str, Callable[[bytes], Any] | None, _Check | None, _Check | None]


def _check(conds: tuple[Cond, ...]) -> _Check | None:
    """One payload's test of all ``conds`` (None: no condition)."""
    if not conds:
        return None
    if len(conds) == 1 and isinstance(conds[0], Is):
        c = conds[0]
        at, mask, values, negate = c.at, c.mask, frozenset(c.values), c.negate
        return lambda b: ((b[at] & mask) in values) != negate
    return lambda b: all(holds(c, b) for c in conds)


def _code_mask(code: np.ndarray, codes: tuple[int, ...]) -> np.ndarray:
    """``code`` is one of ``codes`` (ascending): one comparison for one code or a run of codes."""
    lo, k = codes[0], len(codes)
    if k == 1:
        returned: np.ndarray = code == lo
        return returned
    if codes == tuple(range(lo, lo + k)):
        return (code - np.uint8(lo)) < np.uint8(k)
    return one_of(code, codes, np.isin(np.arange(256), codes))


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a & b
