"""Deduplication keys: the network server's id where it has one, otherwise a UUID derived from the uplink's identity.

A derived key is BLAKE2b-128 (personalised for this purpose) over the JSON array of its parts, shaped as an
RFC 9562 version-8 ("custom") UUID. The parts are raw message strings, never hub-local state, so every copy of an
uplink (MQTT redelivery, a second connection, a Storage Integration backfill) gives the same key, and any change of
device, session, frame counter or network-server time gives another.
"""

from __future__ import annotations

from hashlib import blake2b

import orjson

__all__ = ["derive_key"]

_PERSON = b"stadtpuls.dedup1"


def derive_key(*parts: str | int | None) -> bytes:
    """16 key bytes (a UUIDv8) of ``parts``; a part is a string, an integer or None."""
    digest = bytearray(blake2b(orjson.dumps(parts), digest_size=16, person=_PERSON).digest())
    digest[6] = (digest[6] & 0x0F) | 0x80  # version 8
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
    return bytes(digest)
