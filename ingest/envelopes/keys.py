"""Deduplication keys: the network server's id where it has one, otherwise a UUID derived from the uplink's identity.

A derived key is BLAKE2b-128 (personalised for this purpose) over the JSON array of its parts, shaped as an
RFC 9562 version-8 ("custom") UUID. The parts are raw message strings, never hub-local state, so every copy of an
uplink (MQTT redelivery, a second connection, a Storage Integration backfill) gives the same key, and any change of
device, session, frame counter or network-server time gives another.

On the hot path readers call :func:`key_digest` and ``parse_batch`` sets the UUID version and variant bits of
those rows at once with :func:`mark_uuid8`; :func:`derive_key` does both for a single key.
"""

from __future__ import annotations

from hashlib import blake2b

import numpy as np
import numpy.typing as npt
import orjson

__all__ = ["derive_key", "key_digest", "mark_uuid8"]

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
