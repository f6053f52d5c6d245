"""The ingest's state for the hub rules: its ``/health`` answer (spool, per-source connection) read once a round
and kept in ``ingest_status`` (migration 0015), which the kinds ``spool_in_use`` and ``source_disconnected`` read.

An ingest that does not answer is recorded as unreachable (source ``''``); its sources keep no row, so their
alerts stay as they are until the ingest answers again.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

__all__ = ["IngestStatus", "fetch_ingest_status", "record_ingest_status"]


@dataclass(frozen=True)
class IngestStatus:
    source: str  # a source's name, or '' for the ingest as a whole
    reachable: bool
    connected: bool | None = None
    spool_messages: int | None = None
    spool_bytes: int | None = None
    error: str | None = None


def _parse(body: dict[str, Any]) -> list[IngestStatus]:
    spool = int(body.get("spool_messages") or 0), int(body.get("spool_bytes") or 0)
    whole = IngestStatus("", True, body.get("mqtt") == "connected", *spool)
    sources = body.get("sources") or {}
    return [whole] + [
        IngestStatus(str(name), True, bool(state.get("connected"))) for name, state in sorted(sources.items())
    ]


def fetch_ingest_status(url: str, timeout: float = 5.0) -> list[IngestStatus]:
    """The ingest's state from its ``/health`` (a 503, degraded, still carries the body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the operator's URL setting
            body = json.loads(response.read())
    except urllib.error.HTTPError as e:
        try:
            body = json.loads(e.read())
        except ValueError:
            return [IngestStatus("", False, error=f"HTTP {e.code}")]
    except (OSError, ValueError) as e:
        return [IngestStatus("", False, error=str(e)[:200])]
    if not isinstance(body, dict):
        return [IngestStatus("", False, error="not a JSON object")]
    return _parse(body)


def record_ingest_status(conn: psycopg.Connection, rows: list[IngestStatus], now: datetime) -> None:
    """Replace ``ingest_status`` with ``rows``; an unreachable ingest keeps its sources' last rows."""
    reachable = any(r.source == "" and r.reachable for r in rows)
    with conn.transaction():
        conn.execute("DELETE FROM ingest_status" if reachable else "DELETE FROM ingest_status WHERE source = ''")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest_status (source, reachable, connected, spool_messages, spool_bytes, error,"
                " checked_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(r.source, r.reachable, r.connected, r.spool_messages, r.spool_bytes, r.error, now) for r in rows],
            )
