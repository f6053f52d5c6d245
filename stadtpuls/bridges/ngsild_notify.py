"""Notifies an external NGSI-LD context broker of changed entities: each lot, space, bin and bus whose entity
differs from what the broker last accepted is sent with ``POST {broker}/ngsi-ld/v1/entityOperations/upsert``
(``application/ld+json``, the Smart Data Models ``@context`` in each entity).

Steps of :meth:`NgsiLdNotifier.run`:

1. wait for the writer's ``NOTIFY stadtpuls`` (or ``interval`` seconds);
2. build the current entities (:func:`stadtpuls.api.ngsild.current.current_entities`, the API's own answer);
3. send those that differ from the last state the broker accepted, in batches of ``BATCH``; a batch the broker
   refuses or cannot be reached for stays unsent and is retried, with a growing pause (1 s doubling to 60 s), so a
   broker that was away gets every entity that changed meanwhile, once, in its newest state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import psycopg
from psycopg import sql

from stadtpuls.api.ngsild.current import current_entities
from stadtpuls.api.ngsild.models import CONTEXT, CORE_CONTEXT, TYPES
from stadtpuls.logs import get_logger
from stadtpuls.schema import NOTIFY_CHANNEL

__all__ = ["BATCH", "NgsiLdNotifier"]

BATCH = 100
MAX_PAUSE_S = 60.0
RETRY_S = 5.0
log = get_logger("stadtpuls.bridges.ngsild_notify")


class NgsiLdNotifier:
    def __init__(
        self, database_url: str, broker_url: str, *, tz: str, max_age_days: int = 93, interval: float = 10.0
    ) -> None:
        self.database_url = database_url
        self.endpoint = broker_url.rstrip("/") + "/ngsi-ld/v1/entityOperations/upsert"
        self.tz, self.max_age_days, self.interval = tz, max_age_days, interval
        self.accepted: dict[str, bytes] = {}  # entity id -> the entity the broker last accepted
        self.sent_batches = 0
        self.failures = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Notify until :meth:`stop`; a lost database connection is reopened every ``RETRY_S`` seconds."""
        async with httpx.AsyncClient(timeout=10.0) as http:
            while not self._stop.is_set():
                try:
                    await self._serve(http)
                except psycopg.OperationalError as e:
                    log.warning("database not reachable; retrying", extra={"error": str(e).strip()[:200]})
                    try:
                        await asyncio.wait_for(self._stop.wait(), RETRY_S)
                    except TimeoutError:
                        pass

    async def _serve(self, http: httpx.AsyncClient) -> None:
        pause = 1.0
        async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(NOTIFY_CHANNEL)))
            while not self._stop.is_set():
                ok = await self.notify_changes(conn, http)
                pause = 1.0 if ok else min(2 * pause, MAX_PAUSE_S)
                async for _ in conn.notifies(timeout=self.interval if ok else pause, stop_after=1):
                    pass

    async def notify_changes(self, conn: psycopg.AsyncConnection, http: httpx.AsyncClient) -> bool:
        """Send the entities that changed since the broker last accepted them; False when a batch failed."""
        entities = await current_entities(conn, TYPES, tz=self.tz, max_age_days=self.max_age_days)
        changed = [(e["id"], orjson.dumps(e)) for e in entities]
        changed = [(i, body) for i, body in changed if self.accepted.get(i) != body]
        for start in range(0, len(changed), BATCH):
            batch = changed[start : start + BATCH]
            if not await self._send(http, [orjson.loads(body) for _, body in batch]):
                return False
            self.accepted.update(batch)
        return True

    async def _send(self, http: httpx.AsyncClient, entities: list[dict[str, Any]]) -> bool:
        context = [CONTEXT, CORE_CONTEXT]
        payload = orjson.dumps([{**e, "@context": context} for e in entities])
        try:
            r = await http.post(self.endpoint, content=payload, headers={"Content-Type": "application/ld+json"})
        except httpx.HTTPError as e:
            self.failures += 1
            log.warning("context broker not reachable; will retry", extra={"error": str(e)})
            return False
        if r.status_code not in (200, 201, 204):
            self.failures += 1
            log.warning("context broker refused the upsert; will retry", extra={"status": r.status_code})
            return False
        self.sent_batches += 1
        return True
