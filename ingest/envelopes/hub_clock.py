"""Reading times from the hub's clock, for uplinks whose message carries no usable time of its own.

Such uplinks (ChirpStack v3 without ``publishedAt`` and gateway time, TTS without ``received_at``) are read at
the hub's receive time of their batch. Readings are keyed by (device, time), so uplinks of one device in one batch
must not share that instant: the k-th distinct uplink of a device in the batch (k = 0, 1, ..., in arrival order)
is read at the hub time plus k microseconds. Copies of one uplink (the same dedup key) get the time of the first
copy, so the raw table's (dev_eui, time, dedup_key) key still stores them once.

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

_NIBBLE = np.zeros(256, dtype=np.uint64)
_NIBBLE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint64)
_NIBBLE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16, dtype=np.uint64)
_NIBBLE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16, dtype=np.uint64)


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
    first = _first_copies(np.ascontiguousarray(keys, dtype=np.uint8).view(np.uint64))
    distinct = np.flatnonzero(first == np.arange(n))  # each distinct uplink's first copy, in arrival order
    number, named = _device_numbers(dev_eui[distinct], lns_device_id[distinct])
    if named.any():  # grouped by device, arrival order kept
        by_device = np.lexsort((np.arange(len(distinct)), number, named))
    else:
        by_device = np.argsort(number, kind="stable")
    number, named = number[by_device], named[by_device]
    starts = np.flatnonzero(np.r_[True, (number[1:] != number[:-1]) | (named[1:] != named[:-1])])
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(distinct)]))
    rank = np.zeros(n, dtype=np.int64)
    rank[distinct[by_device]] = np.arange(len(distinct)) - group_start
    return rank[first]


def _device_numbers(
    dev_eui: npt.NDArray[np.bytes_], lns_device_id: npt.NDArray[np.object_]
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """A number per device and whether it is named: its DevEUI's value, else (a TTS device without DevEUI, named)
    one number per distinct device id."""
    hex_digits = np.frombuffer(np.ascontiguousarray(dev_eui, dtype="S16").tobytes(), np.uint8).reshape(-1, 16)
    number = np.zeros(len(dev_eui), dtype=np.uint64)
    for column in _NIBBLE[hex_digits].T:
        number = (number << np.uint64(4)) | column
    named = dev_eui == b""
    if named.any():
        _, ids = np.unique(lns_device_id[named].astype(str), return_inverse=True)
        number[named] = ids.reshape(-1).astype(np.uint64)
    return number, named


def _first_copies(halves: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Row of the first copy of each row's key (keys as (n, 2) uint64)."""
    n = len(halves)
    head = np.sort(halves[:, 0])
    if not (head[1:] == head[:-1]).any():  # the usual batch: no key twice
        return np.arange(n)
    order = np.lexsort((np.arange(n), halves[:, 1], halves[:, 0]))  # equal keys together, in arrival order
    ordered = halves[order]
    new_key = np.r_[True, (ordered[1:] != ordered[:-1]).any(axis=1)]
    first = np.empty(n, dtype=np.int64)
    first[order] = order[np.flatnonzero(new_key)][np.cumsum(new_key) - 1]
    return first
