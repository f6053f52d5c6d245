"""A town's share of the public answers: the hub-wide cached summaries and feeds cut down to one town's sites, and
the path prefix a town's links carry.

The live summaries (``lots``, ``lines``, ``vehicles``) and the open-data feeds are computed once for the whole
hub (:mod:`.live`). A town's answer is the hub's answer with only the items of the town's sites:

1. ``site_towns`` (a topic like the others, refreshed with them) maps every ``site_id`` to its tenant;
2. :data:`VIEWS` says, per topic, how to keep a town's items (a site id per item) and re-encode the rest;
3. :func:`town_body` makes that body once per change of the topic and keeps it beside the hub's
   (``Topic.derived``), so five towns polling cost what one does.

Requests without a town prefix get the hub's body unchanged: a one-town install answers as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from stadtpuls.settings import Settings

from .live import LiveHub, Topic
from .opendata import gtfsrt
from .tenancy import Tenant

__all__ = [
    "SITE_TOWNS",
    "VIEWS",
    "InTown",
    "add_site_towns",
    "in_town",
    "page_prefix",
    "town_body",
    "town_key",
    "town_timezone",
]

SITE_TOWNS = "site_towns"
View = Callable[[Any, "InTown"], bytes]


class InTown:
    """Whether a site (by ``site_id`` or by ``public_id``, the id the open-data standards show) is in one town."""

    def __init__(self, towns: dict[str, dict[Any, str]], slug: str) -> None:
        self._sites, self._public, self.slug = towns["sites"], towns["public"], slug

    def site(self, site_id: str | None) -> bool:
        return site_id is not None and self._sites.get(site_id) == self.slug

    def public(self, public_id: int | str) -> bool:
        return self._public.get(int(public_id)) == self.slug


def page_prefix(request: Request) -> str:
    """``/t/{slug}`` for a request that came in under a town's prefix, else ''."""
    slug = getattr(request.state, "tenant", None)
    return f"/t/{slug}" if slug else ""


def town_timezone(settings: Settings, tenant: Tenant | None) -> str:
    """The time zone a town's history is bucketed and shown in: its own, else the hub's (also for a name that is
    not an IANA zone: a town's row never breaks its pages)."""
    tz = tenant.timezone if tenant is not None else None
    if not tz:
        return settings.timezone
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return settings.timezone
    return tz


def town_key(slug: str | None, key: str) -> str:
    """A ``Topic.derived`` key for ``key`` (e.g. a raw query string) in a town; the hub's own keys unchanged. A
    space never occurs in a raw query string, so the two kinds of key cannot meet."""
    return key if slug is None else f"{slug} {key}"


def add_site_towns(hub: LiveHub, ttl: float) -> Topic:
    async def compute(pool: AsyncConnectionPool) -> dict[str, dict[Any, str]]:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT site_id, public_id, tenant FROM sites")
            rows = await cur.fetchall()
        return {"sites": {r[0]: r[2] for r in rows}, "public": {r[1]: r[2] for r in rows}}

    # the body is only a digest: nobody is sent this topic, and the map's JSON would cost a large hub's poll
    return hub.add(SITE_TOWNS, compute, ttl, encode=lambda towns: str(len(towns["sites"])).encode())


def _listing(items_key: str, id_key: str, count_key: str) -> View:
    def view(data: Any, in_town: InTown) -> bytes:
        items = [i for i in data[items_key] if in_town.site(i[id_key])]
        return orjson.dumps({**data, items_key: items, count_key: len(items)}, option=orjson.OPT_NAIVE_UTC)

    return view


def _datex(data: Any, in_town: InTown) -> bytes:
    light = data["parkingPublicationLight"]  # its items carry the sites' public ids (ParkAPI's ids)
    return orjson.dumps(
        {
            **data,
            "parkingPublicationLight": {
                **light,
                "parkingSite": [s for s in light["parkingSite"] if in_town.public(s["_id"])],
                "parkingSpace": [p for p in light["parkingSpace"] if in_town.public(p["_id"])],
            },
        }
    )


def _gtfs(msg: Any, in_town: InTown) -> bytes:
    body: bytes = gtfsrt.only(msg, in_town.site).SerializeToString()
    return body


#: topic name -> how a town's body is made from the hub's data
VIEWS: dict[str, View] = {
    "lots": _listing("data", "lot_id", "count"),
    "lines": _listing("data", "line_id", "count"),
    "vehicles": _listing("data", "vehicle_id", "count"),
    "parking_sites": _listing("items", "original_uid", "total_count"),
    "parking_spots": _listing("items", "original_uid", "total_count"),
    "datex2": _datex,
    "datex2_spaces": _datex,
    "vehicle_positions": _gtfs,
}


async def in_town(hub: LiveHub, slug: str) -> InTown:
    """The town's sites, as ``site_towns`` last read them."""
    _, towns = await hub.get(SITE_TOWNS)
    return InTown(towns, slug)


async def town_body(hub: LiveHub, name: str, slug: str | None) -> tuple[bytes, Any]:
    """The body of topic ``name`` for a town (the hub's body when ``slug`` is None) and the hub's data."""
    if slug is None:
        return await hub.get(name)
    keep = await in_town(hub, slug)
    _, data = await hub.get(name)
    return hub.topics[name].derived(town_key(slug, " "), lambda: VIEWS[name](data, keep)), data
