"""Reading times from the hub's clock, for uplinks whose message carries no usable time of its own.

Such uplinks (ChirpStack v3 without ``publishedAt`` and gateway time, TTS without ``received_at``) are read at
the hub's receive time of their batch. Readings are keyed by (device, time), so uplinks of one device in one batch
must not share that instant: the k-th distinct uplink of a device in the batch (k = 0, 1, ..., in arrival order)
is read at the hub time plus k microseconds. Copies of one uplink (the same dedup key) get the time of the first
copy, so the raw table's (dedup_key, time) key still stores them once.

The times are a pure function of the batch and its hub time: a batch written again (after a failed commit, from
the spool) gets the same times. Batches are stamped one after the other, each after the previous one was parsed,
so their hub times lie further apart than their largest k; a batch split to isolate a bad message stamps its second
half after the first half's last time (:mod:`ingest.isolate`). A device is its DevEUI, or its TTS device id when
the message has no DevEUI.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["hub_clock_offsets"]


def hub_clock_offsets(
    dev_eui: npt.NDArray[np.bytes_], lns_device_id: npt.NDArray[np.object_], keys: npt.NDArray[np.uint8]
) -> npt.NDArray[np.int64]:
    """Microseconds after the hub time for uplinks timed by the hub, given in arrival order (see module docstring).

    ``keys`` are their dedup keys (shape (n, 16)); the result is the rank of each uplink's first copy among the
    distinct uplinks of its device.
    """
    n = len(dev_eui)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    named = dev_eui == b""
    device = dev_eui.astype("U16")
    if named.any():
        device = np.where(named, np.char.add("id:", lns_device_id.astype(str)), device)
    _, first, copy_of = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    distinct = np.sort(first)  # each distinct uplink's first copy, in arrival order
    by_device = np.argsort(device[distinct], kind="stable")  # grouped by device, arrival order kept
    grouped = device[distinct][by_device]
    position = np.arange(len(distinct))
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(distinct)]))
    rank = np.zeros(n, dtype=np.int64)
    rank[distinct[by_device]] = position - group_start
    return rank[first[copy_of.reshape(-1)]]
