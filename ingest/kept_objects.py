"""Rows of ``uplink_decoded``: the objects a script codec decoded, kept with their raw uplinks.

A script codec's output has no table of its own: its readings map (when it has one) feeds the domain tables, and
the whole object is kept here, keyed like the uplink (``dev_eui``, ``time``, ``dedup_key``), with the script's
warnings and the version that decoded it. The writer stores these rows with the batch like any domain table's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from stadtpuls.schema import UPLINK_DECODED

from .envelopes import EnvelopeBatch
from .envelopes.keys import stored_keys
from .pgcopy import Field, var_from_strings

__all__ = ["TABLE", "KeptObjects"]

TABLE = UPLINK_DECODED.name
_JSONB_VERSION = b"\x01"  # binary COPY of jsonb: a format version byte, then the JSON text


def jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + orjson.dumps(value)


@dataclass
class KeptObjects:
    """Collects the kept objects of a batch's codec groups; :meth:`table_rows` builds the COPY fields."""

    rows: list[np.ndarray] = field(default_factory=list)  # uplink rows of the batch
    dev_euis: list[np.ndarray] = field(default_factory=list)
    codec_ids: list[str] = field(default_factory=list)
    data: list[Any] = field(default_factory=list)
    warnings: list[list[str] | None] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)

    def add(
        self,
        rows: np.ndarray,
        dev_eui: np.ndarray,
        ok: np.ndarray,
        codec_id: str,
        kept: tuple[list[Any], list[list[str] | None], int],
    ) -> None:
        """The decoded group of uplink ``rows`` (their DevEUIs ``dev_eui``); only rows ``ok`` are kept."""
        data, warnings, version = kept
        good = np.flatnonzero(ok)
        self.rows.append(rows[good])
        self.dev_euis.append(dev_eui[good])
        idx = good.tolist()
        self.data += [data[i] for i in idx]
        self.warnings += [warnings[i] for i in idx]
        self.codec_ids += [codec_id] * len(idx)
        self.versions += [version] * len(idx)

    def fields(self, batch: EnvelopeBatch) -> tuple[np.ndarray, list[Field]]:
        """The kept rows (uplink rows of ``batch``) and their COPY fields in the column order of ``uplink_decoded``
        (:data:`stadtpuls.schema.UPLINK_DECODED`)."""
        r = np.concatenate(self.rows)
        ids, _ = var_from_strings(self.codec_ids)
        data, _ = var_from_strings([jsonb(d) for d in self.data])
        warnings, no_warnings = var_from_strings([None if w is None else jsonb(w) for w in self.warnings])
        fields = [
            Field("timestamptz", batch.time[r]),
            Field("int8", stored_keys(batch.dedup_key[r])),
            Field("text", np.concatenate(self.dev_euis)),
            Field("text", ids),
            Field("int4", np.array(self.versions, dtype=np.int32)),
            Field("jsonb", data),
            Field("jsonb", warnings, no_warnings),
        ]
        return r, fields
