"""Deduplication keys: the network server's id where it has one, otherwise a UUID derived from the uplink's identity.

A derived key is BLAKE2b-128 (personalised for this purpose) over the JSON array of its parts, shaped as an
RFC 9562 version-8 ("custom") UUID. The parts are raw message strings, never hub-local state, so every copy of an
uplink (MQTT redelivery, a second connection, a Storage Integration backfill) gives the same key, and any change of
device, session, frame counter or network-server time gives another.

On the hot path readers call :func:`key_digest` and ``parse_batch`` sets the UUID version and variant bits of
those rows at once with :func:`mark_uuid8`; :func:`derive_key` does both for a single key.

The tables store a key as 64 bits (``uplinks.dedup_key bigint``, migration 0017): the two halves of the 16 bytes
XORed (:func:`stored_keys`, :func:`stored_key`; in SQL ``dedup_key_of(uuid)``), so the random bits of either half
count (a time-ordered UUIDv7 keeps its randomness in the second half). The stored key is unique together with the
device and the reading time (the primary key ``(dev_eui, time, dedup_key)``): two different keys of one device at
one microsecond agree in 64 bits with a chance of 2^-64.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

__all__ = ["derive_key", "key_digest", "mark_uuid8", "key_of_stored", "reception", "stored_key", "stored_keys"]

_HASH = blake2b(digest_size=16, person=b"stadtpuls.dedup1")


def key_digest(*parts: str | int | None) -> bytes:
    """The 16 raw digest bytes of ``parts`` (a part is a string, an integer or None); not yet a UUIDv8."""
    h = _HASH.copy()
    h.update(orjson.dumps(parts))
    return h.digest()


def mark_uuid8(keys: npt.NDArray[np.uint8], rows: npt.NDArray[np.bool_] | slice = slice(None)) -> None:
    """Set the RFC 9562 version 8 and variant bits in place on ``keys[rows]`` (shape (n, 16))."""
    keys[rows, 6] = (keys[rows, 6] & 0x0F) | 0x80
    keys[rows, 8] = (keys[rows, 8] & 0x3F) | 0x80


def derive_key(*parts: str | int | None) -> bytes:
    """16 key bytes (a UUIDv8) of ``parts``."""
    digest = bytearray(key_digest(*parts))
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


def reception(entries: list[Any] | None, fields: tuple[str, ...]) -> str:
    """What the receiving gateways reported about one frame (``fields`` of each entry of a message's gateway list),
    in a fixed order: a part for keys of messages without an id or time. A redelivered message repeats these values
    exactly; a new transmission of the same bytes is measured anew (signal, concentrator counter)."""
    reports = sorted(orjson.dumps([e.get(f) for f in fields]) for e in entries or () if type(e) is dict)
    return b",".join(reports).decode()


def stored_keys(keys: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """The stored 64-bit keys of ``keys`` (shape (n, 16)): the big-endian halves XORed, as signed integers."""
    halves = np.ascontiguousarray(keys, dtype=np.uint8).view(">u8").reshape(-1, 2)
    folded: npt.NDArray[np.int64] = (halves[:, 0] ^ halves[:, 1]).astype(np.uint64).view(np.int64)
    return folded


def stored_key(key: bytes) -> int:
    """The stored 64-bit key of one 16-byte key (``uuid.UUID.bytes``)."""
    folded = int.from_bytes(key[:8], "big") ^ int.from_bytes(key[8:16], "big")
    return folded - (1 << 64) if folded >= 1 << 63 else folded


def key_of_stored(stored: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
    """16-byte keys (shape (n, 16)) whose stored keys are ``stored``: the stored key, then eight zero bytes (for
    uplinks read back from the tables)."""
    halves = np.zeros((len(stored), 2), dtype=">i8")
    halves[:, 0] = stored
    return halves.view(np.uint8).reshape(len(stored), 16)
