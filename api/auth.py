"""API keys: format, hashing and verification.

A key reads ``sp_<key_id>_<secret>``: ``key_id`` (12 hex digits) finds the row in ``api_keys``, whose ``key_hash``
is ``sha256$<salt hex>$<sha256(salt + secret) hex>``. The secret is 32 random bytes, so one round of a salted hash
is enough; keys are compared with :func:`hmac.compare_digest`. Keys from the settings (``STADTPULS_OPERATOR_KEY``,
``STADTPULS_ADMIN_KEY``) are held only as digests too.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from psycopg import AsyncConnection

from stadtpuls.schema import DEFAULT_TENANT

from .queries import keys as q

__all__ = ["ROLES", "KeyRing", "NewKey", "Principal", "hash_secret", "new_key", "parse_key", "verify_secret"]

Role = Literal["operator", "admin"]
ROLES: tuple[Role, ...] = ("operator", "admin")
RANK = {"operator": 1, "admin": 2}
_KEY = re.compile(r"^sp_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,100})$")
_DUMMY = "sha256$" + "00" * 16 + "$" + "00" * 32


@dataclass(frozen=True)
class Principal:
    role: Role
    key_id: str  # "settings" for keys from the environment
    name: str = ""
    tenant: str = DEFAULT_TENANT  # an operator key sees only its tenant's rows; an admin key is the hub's

    def allows(self, role: Role) -> bool:
        return RANK[self.role] >= RANK[role]


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str  # shown once
    key_hash: str


def _digest(salt: bytes, secret: str) -> str:
    return hashlib.sha256(salt + secret.encode()).hexdigest()


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    return f"sha256${salt.hex()}${_digest(salt, secret)}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "sha256":
        return False
    return hmac.compare_digest(_digest(salt, secret), digest)


def new_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"sp_{key_id}_{secret}", hash_secret(secret))


def parse_key(key: str) -> tuple[str, str] | None:
    m = _KEY.match(key)
    return (m.group(1), m.group(2)) if m else None


class KeyRing:
    """Checks presented keys against the settings' keys and the ``api_keys`` table."""

    def __init__(self, operator_key: str | None = None, admin_key: str | None = None) -> None:
        configured: list[tuple[Role, str | None]] = [("admin", admin_key), ("operator", operator_key)]
        self._static: list[tuple[Role, str]] = [
            (role, hashlib.sha256(key.encode()).hexdigest()) for role, key in configured if key
        ]

    async def authenticate(self, conn: AsyncConnection, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        found: Principal | None = None
        for role, expected in self._static:  # every digest is compared, a match does not end the loop early
            if hmac.compare_digest(digest, expected) and found is None:
                found = Principal(role, "settings")
        if found is not None:
            return found
        parsed = parse_key(presented)
        if parsed is None:
            return None
        key_id, secret = parsed
        row = await q.active_key(conn, key_id=key_id)
        ok = verify_secret(secret, row["key_hash"] if row else _DUMMY)  # same work whether or not the id exists
        if row is None or not ok or row["role"] not in ROLES:
            return None
        return Principal(row["role"], key_id, row["name"], row["tenant"])
