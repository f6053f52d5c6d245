"""Dead letters: messages the ingest could not store as readings, with stage and reason. A dead letter belongs to
the tenant of its device; one without a known device (a bad envelope, an unknown DevEUI) to no tenant, and a
filtered listing shows those only with ``unowned`` (``deps.sees_unowned``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

__all__ = ["DeadLetterFilter", "count_dead_letters", "list_dead_letters"]

PREVIEW_BYTES = 256
_FILTER = """
WHERE (%(tenant)s::text IS NULL OR coalesce(
           (SELECT d.tenant FROM devices d WHERE d.dev_eui = dead_letters.dev_eui),
           CASE WHEN %(unowned)s THEN %(tenant)s::text END) = %(tenant)s::text)
  AND (%(stage)s::text IS NULL OR stage = %(stage)s::text)
  AND (%(dev_eui)s::text IS NULL OR dev_eui = %(dev_eui)s::text)
  AND (%(start)s::timestamptz IS NULL OR received_at >= %(start)s::timestamptz)
  AND (%(end)s::timestamptz IS NULL OR received_at < %(end)s::timestamptz)"""


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a listing shows: of ``tenant`` (None: every one; with ``unowned`` also those of no
    tenant), of one stage and device, received in [start, end)."""

    tenant: str | None
    unowned: bool = False
    stage: str | None = None
    dev_eui: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def params(self) -> dict[str, Any]:
        """The query parameters of :data:`_FILTER`: the fields by name."""
        return asdict(self)


async def list_dead_letters(
    conn: AsyncConnection, *, where: DeadLetterFilter, limit: int, offset: int
) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        """SELECT id, received_at, topic, stage, reason, dev_eui, lns, repeats, last_received_at,
                  coalesce(length(payload), 0) AS payload_bytes, substring(payload FROM 1 FOR %(preview)s) AS head
           FROM dead_letters"""
        + _FILTER
        + " ORDER BY received_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {**where.params(), "preview": PREVIEW_BYTES, "limit": limit, "offset": offset},
    )
    rows = await cur.fetchall()
    for r in rows:
        head = r.pop("head")
        r["payload_preview"] = bytes(head).decode("utf-8", errors="replace") if head is not None else ""
    return rows


async def count_dead_letters(conn: AsyncConnection, *, where: DeadLetterFilter) -> int:
    cur = await conn.execute("SELECT count(*) FROM dead_letters" + _FILTER, where.params())
    row = await cur.fetchone()
    return int(row[0]) if row else 0
