"""Script codecs in the database (``codec_scripts``): adding versions, reading the current ones, loading them.

``add_script`` stores a script as a new version when its text (by SHA-256) differs from the current version's,
and keeps every earlier version; the same text again only updates the examples or readings map given with it.
The examples and the readings map of a new version default to the previous version's. A script id is a TTN
Device Repository style ``vendor/model`` that no built-in codec has: the built-ins stay the fast path.

:func:`codec_resolver` is what the ingest's registry loads devices' codecs with: a built-in, else the current
version of a stored script. Loaded scripts are cached per process by id, SHA-256 and readings map, so a registry
refresh reuses the loaded engines and picks up a new version (or a new map) as soon as it is stored.

Exceptions::

    CodecError                  (ingest.codecs.base)
     +-- ScriptStoreError       a script cannot be stored (attribute: codec_id)
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from stadtpuls.logs import get_logger

from .codecs import Codec, CodecError, UnknownCodec, all_codecs, get
from .codecs.script import Limits, ReadingsMap, ScriptCodec, ScriptError, default_limits

__all__ = [
    "StoredScript",
    "ScriptStoreError",
    "add_script",
    "codec_resolver",
    "current_scripts",
    "known_codec_ids",
    "load_script",
    "sha256",
]

log = get_logger("stadtpuls.ingest.codec_scripts")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")
# the latest version of every script, or of the one whose id is given (NULL: all)
_CURRENT = """
SELECT DISTINCT ON (codec_id) codec_id, version, source, sha256, examples, readings, f_ports, added_at
FROM codec_scripts WHERE %(id)s::text IS NULL OR codec_id = %(id)s::text ORDER BY codec_id, version DESC
"""


class ScriptStoreError(CodecError):
    def __init__(self, codec_id: str, message: str) -> None:
        super().__init__(f"{codec_id}: {message}")
        self.codec_id = codec_id


@dataclass(frozen=True)
class StoredScript:
    codec_id: str
    version: int
    source: str
    sha256: str
    examples: list[dict[str, Any]] = field(default_factory=list)
    readings: dict[str, Any] = field(default_factory=dict)
    f_ports: tuple[int, ...] = ()
    added_at: datetime | None = None


def sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _row(row: tuple[Any, ...]) -> StoredScript:
    codec_id, version, source, digest, examples, readings, f_ports, added_at = row
    return StoredScript(codec_id, version, source, digest, examples, readings, tuple(f_ports), added_at)


def current_scripts(conn: psycopg.Connection[Any], codec_id: str | None = None) -> dict[str, StoredScript]:
    """The current (latest) version of every stored script, or of ``codec_id`` only."""
    rows = conn.execute(_CURRENT, {"id": codec_id}).fetchall()
    return {r[0]: _row(r) for r in rows}


def known_codec_ids(conn: psycopg.Connection[Any]) -> set[str]:
    """Built-in codec ids and stored script ids."""
    stored = {r[0] for r in conn.execute("SELECT DISTINCT codec_id FROM codec_scripts").fetchall()}
    return set(all_codecs()) | stored


def add_script(
    conn: psycopg.Connection[Any],
    codec_id: str,
    source: str,
    *,
    examples: list[dict[str, Any]] | None = None,
    readings: ReadingsMap | None = None,
) -> tuple[StoredScript, bool]:
    """Store ``source`` as the current version of ``codec_id``; returns it and whether it is a new version.

    The script must load (compile, define ``decodeUplink`` or ``Decoder``); raises :class:`ScriptStoreError`."""
    if not _ID.match(codec_id):
        raise ScriptStoreError(codec_id, "a codec id is vendor/model in lower case (letters, digits, . _ -)")
    if codec_id in all_codecs():
        raise ScriptStoreError(codec_id, "a built-in codec has this id; give the script an id of its own")
    try:
        ScriptCodec(codec_id, source)
    except ScriptError as e:
        raise ScriptStoreError(codec_id, e.message) from None
    digest = sha256(source)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('codec_scripts:' || %s))", (codec_id,))
        current = current_scripts(conn, codec_id).get(codec_id)
        new_examples = examples if examples is not None else (current.examples if current else [])
        new_readings = readings.as_dict() if readings is not None else (current.readings if current else {})
        f_ports = sorted({int(e["f_port"]) for e in new_examples})
        if current is not None and current.sha256 == digest:
            conn.execute(
                "UPDATE codec_scripts SET examples = %s, readings = %s, f_ports = %s"
                " WHERE codec_id = %s AND version = %s",
                (Jsonb(new_examples), Jsonb(new_readings), f_ports, codec_id, current.version),
            )
            created = False
            version = current.version
        else:
            version = current.version + 1 if current else 1
            conn.execute(
                "INSERT INTO codec_scripts (codec_id, version, source, sha256, examples, readings, f_ports)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (codec_id, version, source, digest, Jsonb(new_examples), Jsonb(new_readings), f_ports),
            )
            created = True
    stored = current_scripts(conn, codec_id)[codec_id]
    return stored, created


# --- loading for the ingest ----------------------------------------------------------------------------

_cache: dict[tuple[str, str, bytes, Limits], ScriptCodec] = {}
_cache_lock = threading.Lock()


def load_script(stored: StoredScript) -> ScriptCodec:
    """The stored script as a codec, loaded once per process (per id, text and readings map)."""
    key = (
        stored.codec_id,
        stored.sha256,
        orjson.dumps(stored.readings, option=orjson.OPT_SORT_KEYS),
        default_limits(),
    )
    with _cache_lock:
        codec = _cache.get(key)
        if codec is None:
            for old in [k for k in _cache if k[0] == stored.codec_id]:
                del _cache[old]  # earlier versions of this codec are no longer used
            codec = _cache[key] = ScriptCodec(
                stored.codec_id,
                stored.source,
                version=stored.version,
                sha256=stored.sha256,
                readings=ReadingsMap.parse(stored.readings),
                f_ports=stored.f_ports,
            )
        return codec


def codec_resolver(conn: psycopg.Connection[Any]) -> Callable[[str], Codec | None]:
    """``resolve(codec_id)``: the built-in codec, else the current stored script, else None."""
    scripts = current_scripts(conn)

    def resolve(codec_id: str) -> Codec | None:
        try:
            return get(codec_id)
        except UnknownCodec:
            pass
        stored = scripts.get(codec_id)
        if stored is None:
            return None
        try:
            return load_script(stored)
        except (ScriptError, CodecError) as e:
            log.error("codec script does not load", extra={"codec": codec_id, "reason": str(e)})
            return None

    return resolve
