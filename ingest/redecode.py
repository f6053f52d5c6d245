"""``stadtpuls redecode --codec ID [--since T] [--until T] [--device EUI]``: decode stored raw uplinks again.

After a codec script got a new version (or a readings map), the readings its uplinks produced are replaced by
what the current version makes of them. The raw uplinks of the devices that use the codec are read in batches in
(time, dev_eui, dedup_key) order; each batch is decoded and mapped exactly as the ingest does (:func:`ingest.domain.
map_domain`), and in one transaction the uplinks' earlier readings (every domain table, the kept decoded objects)
are deleted and the new ones written by the batch writer. Running it twice gives the same rows; it is safe while
ingest runs (each batch is one short transaction; uplinks that arrive meanwhile are decoded by the ingest, which
loads the new version at its next registry refresh). Rows the current version rejects lose their readings and
are counted; their raw uplinks stay.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from tqdm import tqdm

from stadtpuls.commands import database_url
from stadtpuls.schema import READING_TABLES
from stadtpuls.settings import load

from .domain import map_domain
from .envelopes import EnvelopeBatch
from .envelopes.keys import key_of_stored
from .kept_objects import TABLE as KEPT_TABLE
from .registry import load_registry
from .stops import StopTracker
from .writer import PreparedBatch, Writer

__all__ = ["RedecodeResult", "redecode", "setup"]

_SELECT = """
SELECT u.time, u.dedup_key, u.dev_eui, u.f_port, u.payload
FROM uplinks u JOIN devices d ON d.dev_eui = u.dev_eui
WHERE d.codec = %(codec)s AND u.f_port IS NOT NULL AND u.payload IS NOT NULL
  AND (%(device)s::text IS NULL OR u.dev_eui = %(device)s)
  AND (%(since)s::timestamptz IS NULL OR u.time >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR u.time < %(until)s)
  AND (%(after_time)s::timestamptz IS NULL
       OR (u.time, u.dev_eui, u.dedup_key) > (%(after_time)s, %(after_dev)s::text, %(after_key)s::bigint))
ORDER BY u.time, u.dev_eui, u.dedup_key
LIMIT %(limit)s
"""
_COUNT = "SELECT count(*) FROM (" + _SELECT.replace("LIMIT %(limit)s", "") + ") s"
_DELETE_READINGS = "DELETE FROM {} t USING unnest(%s::text[], %s::timestamptz[]) AS g(dev_eui, time) WHERE t.dev_eui = g.dev_eui AND t.time = g.time"  # noqa: E501
_DELETE_KEPT = "DELETE FROM {} t USING unnest(%s::text[], %s::timestamptz[], %s::bigint[]) AS g(dev_eui, time, dedup_key) WHERE t.dev_eui = g.dev_eui AND t.time = g.time AND t.dedup_key = g.dedup_key"  # noqa: E501


@dataclass
class RedecodeResult:
    uplinks: int = 0
    rejected: int = 0
    readings: dict[str, int] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)


def _batch(rows: list[tuple[Any, ...]]) -> EnvelopeBatch:
    payloads = [bytes(r[4]) for r in rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    return EnvelopeBatch(
        index=np.arange(len(rows), dtype=np.int64),
        time=np.array([r[0].astimezone(UTC).replace(tzinfo=None) for r in rows], dtype="datetime64[us]"),
        dev_eui=np.array([r[2].encode() for r in rows], dtype="S16"),
        f_port=np.array([r[3] for r in rows], dtype=np.int16),
        buf=np.frombuffer(b"".join(payloads), dtype=np.uint8),
        offsets=offsets,
        dedup_key=key_of_stored(np.array([r[1] for r in rows], dtype=np.int64)),
    )


def redecode(
    url: str,
    codec_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    device: str | None = None,
    batch_size: int = 5000,
    progress: bool = False,
) -> RedecodeResult:
    """Decode the stored uplinks of ``codec_id``'s devices again and replace their readings."""
    result = RedecodeResult()
    writer = Writer(url)
    params: dict[str, Any] = {
        "codec": codec_id,
        "device": device,
        "since": since,
        "until": until,
        "after_time": None,
        "after_dev": None,
        "after_key": None,
        "limit": batch_size,
    }
    try:
        with psycopg.connect(url, autocommit=True) as read:
            registry = load_registry(read)
            total = read.execute(_COUNT, params).fetchone()
            bar = tqdm(total=total[0] if total else None, unit="uplinks", disable=not progress, file=sys.stderr)
            while True:
                rows = read.execute(_SELECT, params).fetchall()
                if not rows:
                    break
                params["after_time"], params["after_key"], params["after_dev"] = rows[-1][:3]
                _replace(writer, registry, rows, result)
                bar.update(len(rows))
            bar.close()
    finally:
        writer.close()
    return result


def _replace(writer: Writer, registry: Any, rows: list[tuple[Any, ...]], result: RedecodeResult) -> None:
    env = _batch(rows)
    dev = registry.lookup(env.dev_eui)
    known = np.flatnonzero(dev >= 0)
    domain = map_domain(env, known, dev[known], registry, StopTracker())
    conn = writer.connect()
    euis = [r[2] for r in rows]
    times = [r[0] for r in rows]
    with conn.transaction():  # the writer's own transaction becomes a savepoint of this one
        for table in READING_TABLES:
            conn.execute(sql.SQL(_DELETE_READINGS).format(sql.Identifier(table.name)), (euis, times))
        conn.execute(sql.SQL(_DELETE_KEPT).format(sql.Identifier(KEPT_TABLE)), (euis, times, [r[1] for r in rows]))
        written = writer.write(PreparedBatch(uplinks=[], n_uplinks=0, tables=domain.tables))
    result.uplinks += len(rows)
    result.rejected += len(domain.rejects)
    result.reasons.update(reason for _, reason in domain.rejects)
    for name, n in written.domain.items():
        result.readings[name] = result.readings.get(name, 0) + n


def _run(args: argparse.Namespace) -> int:
    url = str(args.database_url) if args.database_url else database_url(load())
    try:
        result = redecode(
            url,
            args.codec,
            since=args.since,
            until=args.until,
            device=args.device.lower() if args.device else None,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
    except psycopg.OperationalError as e:
        sys.stderr.write(f"stadtpuls: cannot connect to the database: {e}\n")
        return 2
    written = ", ".join(f"{t} {n}" for t, n in sorted(result.readings.items())) or "none"
    sys.stdout.write(
        f"{args.codec}: {result.uplinks} uplinks decoded; rows written: {written}; rejected {result.rejected}\n"
    )
    for reason, n in result.reasons.most_common(10):
        sys.stdout.write(f"  {n} x {reason}\n")
    return 0


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone, e.g. 2026-05-01T00:00:00Z")
    return value


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--codec", required=True, metavar="ID", help="decode the uplinks of the devices using this codec")
    p.add_argument("--since", type=_when, help="first uplink time (ISO 8601 with zone)")
    p.add_argument("--until", type=_when, help="end of the time range (exclusive)")
    p.add_argument("--device", metavar="DEV_EUI", help="one device only")
    p.add_argument("--batch-size", type=int, default=5000, help="uplinks per transaction (default 5000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
    p.set_defaults(func=_run)
