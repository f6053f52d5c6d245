"""Output fields that are the raw payload itself (the Paxcounter's ``bytes`` list, the WILSEN's uppercase hex
``payload``), as columns built when first read.

Their values are one Python object per row (a list or a string); building them costs more than decoding
every other field of a batch, and the ingest path never reads them (the raw payload is stored with the
uplink anyway). :class:`RawColumn` keeps the batch's ``(buf, offsets)`` and materialises ``values`` on first
access, e.g. in :meth:`Decoded.objects`; to every reader it is an ordinary :class:`Column`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .base import Column

__all__ = ["RawColumn"]


class RawColumn(Column):
    """``values[i]`` is payload i as a list of byte values (``form="list"``) or an uppercase hex string
    (``form="hex"``); ``present`` marks the rows that have the field."""

    def __init__(self, buf: np.ndarray, offsets: np.ndarray, present: np.ndarray, form: Literal["list", "hex"]) -> None:
        self._buf = buf
        self._offsets = offsets
        self._form = form
        self._values: np.ndarray | None = None
        self.present = present
        self.null = None

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = self._build()
        return self._values

    @values.setter
    def values(self, values: np.ndarray) -> None:
        self._values = values

    def _build(self) -> np.ndarray:
        n = max(len(self._offsets) - 1, 0)
        out = np.empty(n, dtype=object)
        if n == 0:
            return out
        base = int(self._offsets[0])
        raw = self._buf[base : int(self._offsets[-1])].tobytes()
        bounds = (self._offsets - base).tolist()
        if self._form == "hex":
            text = raw.hex().upper()
            out[:] = [text[2 * a : 2 * b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        else:
            for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                out[i] = list(raw[a:b])
        return out
