"""Typed reads of JSON fields, identifiers and payloads; every bad value raises :class:`EnvelopeError` with its path.

Absent and ``null`` mean the same (servers omit defaults, ChirpStack v3 writes ``null``). Booleans are never
accepted as numbers, even though ``bool`` is an ``int`` in Python.
"""

from __future__ import annotations

import binascii
from typing import Any

from .model import EnvelopeError

__all__ = [
    "chirpstack_kind_by_keys",
    "U32_MAX",
    "b64",
    "eui_from_b64",
    "eui_hex",
    "get_dict",
    "get_list",
    "get_str",
    "opt_bool",
    "opt_int",
    "opt_number",
    "port_and_counter",
    "type_name",
    "uuid_bytes",
]

U32_MAX = 0xFFFF_FFFF

_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def type_name(value: Any) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def wrong_type(path: str, expected: str, value: Any, lns: str | None = None) -> EnvelopeError:
    return EnvelopeError(f"wrong type: {path} must be {expected}, got {type_name(value)}", lns)


def get_dict(d: dict[str, Any], key: str, path: str, lns: str) -> dict[str, Any] | None:
    v = d.get(key)
    if v is None or type(v) is dict:
        return v
    raise wrong_type(path, "an object", v, lns)


def get_list(d: dict[str, Any], key: str, path: str, lns: str) -> list[Any] | None:
    v = d.get(key)
    if v is None or type(v) is list:
        return v
    raise wrong_type(path, "an array", v, lns)


def get_str(d: dict[str, Any], key: str, path: str, lns: str) -> str | None:
    v = d.get(key)
    if v is None or type(v) is str:
        return v
    raise wrong_type(path, "a string", v, lns)


def opt_int(d: dict[str, Any], key: str, path: str, lns: str, hi: int) -> int | None:
    """An integer in 0..hi, or None when absent."""
    v = d.get(key)
    if v is None:
        return None
    if type(v) is not int:
        raise wrong_type(path, "an integer", v, lns)
    if not 0 <= v <= hi:
        raise EnvelopeError(f"out of range: {path} = {v} is not in 0..{hi}", lns)
    return v


def port_and_counter(d: dict[str, Any], port_key: str, cnt_key: str, prefix: str, lns: str) -> tuple[int, int | None]:
    """An uplink's fPort (0 when absent) and frame counter (None when absent), checked as :func:`opt_int` checks
    them (paths ``prefix + key``); the usual valid message costs two lookups."""
    f_port = d.get(port_key)
    if type(f_port) is not int or not 0 < f_port < 256:
        f_port = opt_int(d, port_key, prefix + port_key, lns, 255) or 0
    f_cnt = d.get(cnt_key)
    if f_cnt is not None and (type(f_cnt) is not int or not 0 <= f_cnt <= U32_MAX):
        f_cnt = opt_int(d, cnt_key, prefix + cnt_key, lns, U32_MAX)
    return f_port, f_cnt


def opt_number(d: dict[str, Any], key: str, path: str, lns: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    t = type(v)
    if t is float or t is int:
        return float(v)
    raise wrong_type(path, "a number", v, lns)


def opt_bool(d: dict[str, Any], key: str, path: str, lns: str) -> bool:
    v = d.get(key)
    if v is None:
        return False
    if type(v) is bool:
        return v
    raise wrong_type(path, "a boolean", v, lns)


_EUI_CACHE: dict[str, bytes] = {}
_EUI_CACHE_MAX = 100_000


def eui_hex(value: Any, path: str, lns: str) -> bytes:
    """A 16-digit hex EUI in any case as lower-case ASCII bytes (valid EUIs are remembered: a fleet repeats)."""
    if type(value) is not str:
        raise wrong_type(path, "a string", value, lns)
    hit = _EUI_CACHE.get(value)
    if hit is not None:
        return hit
    if len(value) != 16:
        raise EnvelopeError(f"bad DevEUI: {path} must be 16 hex digits, got {len(value)} characters", lns)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise EnvelopeError(f"bad DevEUI: {path} is not hexadecimal", lns)
    if len(_EUI_CACHE) >= _EUI_CACHE_MAX:
        _EUI_CACHE.clear()
    hit = _EUI_CACHE[value] = value.lower().encode("ascii")
    return hit


def eui_from_b64(value: str, path: str, lns: str) -> bytes:
    """A base64-encoded 8-byte EUI (ChirpStack v3 Protobuf-JSON) as lower-case hex ASCII bytes."""
    raw = b64(value, path, lns)
    if len(raw) != 8:
        raise EnvelopeError(f"bad DevEUI: {path} must encode 8 bytes, got {len(raw)}", lns)
    return raw.hex().encode("ascii")


def b64(value: Any, path: str, lns: str) -> bytes:
    """Standard base64 (strict: no stray characters, correct padding); None -> b""."""
    if value is None:
        return b""
    if type(value) is not str:
        raise wrong_type(path, "a base64 string", value, lns)
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        raise EnvelopeError(f"invalid base64 in {path}", lns) from None


def uuid_bytes(value: Any, path: str, lns: str) -> bytes:
    """A canonical UUID string (8-4-4-4-12 hex) as 16 bytes."""
    if type(value) is not str:
        raise wrong_type(path, "a UUID string", value, lns)
    raw = b""
    if len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-":
        try:
            raw = bytes.fromhex(value.replace("-", ""))
        except ValueError:
            pass
    if len(raw) != 16:
        raise EnvelopeError(f"bad UUID in {path}", lns)
    return raw


def chirpstack_kind_by_keys(msg: dict[str, Any], status_keys: tuple[str, ...], uplink_keys: tuple[str, ...]) -> str:
    """A ChirpStack event's type from the keys it holds, after each version's own tests: ``status`` (battery or
    margin keys), ``up`` (any uplink key), ``location``, ``join`` (``devAddr``), or ``""`` when none tells."""
    for key in status_keys:
        if key in msg:
            return "status"
    for key in uplink_keys:
        if key in msg:
            return "up"
    if "location" in msg:
        return "location"
    if "devAddr" in msg:
        return "join"
    return ""
