"""Measurements as the models produce them (vectorised batches) and as the engine sends them (one per uplink).

A model hands the engine :class:`ReadingBatch` objects: one codec and fPort, n rows of time, device, the codec's
``encode()`` input fields and the ground-truth domain quantities (what the hub must store for that uplink, at
the device's resolution). :func:`expand` encodes a whole batch in one ``encode()`` call and cuts it into
:class:`Reading` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stadtpuls.ingest.codecs import get

__all__ = ["Reading", "ReadingBatch", "expand", "merge_sorted", "periodic_times"]


@dataclass
class ReadingBatch:
    codec: str
    f_port: int
    t_us: np.ndarray  # int64 microseconds
    dev: np.ndarray  # device index
    fields: dict[str, np.ndarray]  # encode() input
    quantities: dict[str, np.ndarray]  # ground truth; NaN in a float column = not measured in that row
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # per-row facts for the ground truth (stop_id ...)

    def __len__(self) -> int:
        return len(self.t_us)

    def take(self, mask: np.ndarray) -> ReadingBatch:
        def cut(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {k: np.asarray(v)[mask] for k, v in d.items()}

        return ReadingBatch(
            self.codec,
            self.f_port,
            self.t_us[mask],
            self.dev[mask],
            cut(self.fields),
            cut(self.quantities),
            cut(self.extra),
        )


@dataclass
class Reading:
    t_us: int
    dev: int
    f_port: int
    payload: bytes
    quantities: dict[str, Any]
    extra: dict[str, Any]


def _py(v: Any) -> Any:
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def expand(batch: ReadingBatch) -> list[Reading]:
    """Encode the batch into real payload bytes and return one Reading per row."""
    n = len(batch)
    if n == 0:
        return []
    buf, offsets = get(batch.codec).encode(batch.f_port, batch.fields)
    raw = buf.tobytes()
    off = offsets.tolist()
    qcols = [(k, np.asarray(v)) for k, v in batch.quantities.items()]
    qlists = [(k, v.tolist(), v.dtype.kind == "f") for k, v in qcols]
    elists = [(k, [_py(x) for x in np.asarray(v).tolist()]) for k, v in batch.extra.items()]
    t = batch.t_us.tolist()
    dev = batch.dev.tolist()
    out = []
    for i in range(n):
        q = {}
        for k, values, is_float in qlists:
            x = values[i]
            if is_float and x != x:  # NaN: not measured in this row
                continue
            q[k] = x
        out.append(Reading(t[i], dev[i], batch.f_port, raw[off[i] : off[i + 1]], q, {k: v[i] for k, v in elists}))
    return out


def merge_sorted(readings: list[Reading]) -> list[Reading]:
    """Readings in time order; ties by device index, so the order is the same on every run."""
    readings.sort(key=lambda r: (r.t_us, r.dev, r.f_port))
    return readings


def periodic_times(
    w0: int,
    w1: int,
    interval_us: np.ndarray,
    phase_us: np.ndarray,
    rng: np.random.Generator,
    jitter_us: int = 2_000_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Report instants in ``[w0, w1)`` of devices that report every ``interval_us`` at ``phase_us`` (past each
    multiple of the interval since the epoch), with up to ``jitter_us`` of delay: ``(t_us, index)`` in index
    order."""
    interval = np.asarray(interval_us, dtype=np.int64)
    phase = np.asarray(phase_us, dtype=np.int64)
    first = phase + (-((phase - w0) // interval)) * interval  # first instant >= w0
    count = np.maximum(0, -((first - w1) // interval))
    idx = np.repeat(np.arange(len(interval)), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    t = first[idx] + k * interval[idx]
    t = np.minimum(t + rng.integers(0, jitter_us, len(t)), w1 - 1)
    return t.astype(np.int64), idx
