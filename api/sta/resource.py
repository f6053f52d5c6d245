"""SensorThings resource paths (``Things(5)/Datastreams``, ``Datastreams(503)/Observations``,
``Observations('503-1796550000000000')/FeatureOfInterest``, ``Things(5)/name/$value``, ``.../$ref``) walked
segment by segment to the JSON (or plain text) they answer.

Exceptions::

    NotFound(LookupError)   an entity set, entity or property that does not exist (answered with 404)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection, sql

from .entities import ENTITY_SETS, EntitySet, parse_observation_id
from .filter import FilterError
from .observations import datastream_row
from .options import Options, parse_options
from .query import Scope, collection, entity_link, fetch, render

__all__ = ["NotFound", "answer", "service_root"]

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z]+|\$value|\$ref)(?:\((?P<key>[^()]*)\))?$")
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class _Segment:
    name: str
    key: str | None


def _segments(path: str) -> list[_Segment]:
    out = []
    for part in path.strip("/").split("/"):
        m = _SEGMENT.match(part)
        if m is None:
            raise NotFound(f"{part[:60]!r} is not a resource path segment")
        out.append(_Segment(m.group("name"), m.group("key")))
    return out


def service_root(base: str, mqtt_endpoints: list[str] | None = None) -> dict[str, Any]:
    """The service root: every entity set with its URL, and the conformance classes served."""
    conformance = list(CONFORMANCE)
    settings: dict[str, Any] = {"conformance": conformance}
    if mqtt_endpoints:
        receive = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates"
        conformance.append(receive)
        settings[receive] = {"endpoints": mqtt_endpoints}
    return {
        "value": [{"name": name, "url": f"{base}/{name}"} for name in ENTITY_SETS],
        "serverSettings": settings,
    }


def _key(es: EntitySet, key: str) -> Any:
    if es.id_type == "int":
        if not key.isdigit():
            raise NotFound(f"{es.name} ids are integers, not {key[:40]!r}")
        return int(key)
    if len(key) < 2 or key[0] != "'" or key[-1] != "'":
        raise NotFound(f"{es.name} ids are quoted strings, not {key[:40]!r}")
    return key[1:-1].replace("''", "'")


async def _one(conn: AsyncConnection, scope: Scope, key: str | None) -> dict[str, Any]:
    """The single row of ``scope`` (with ``key``: the one of that id), else :class:`NotFound`."""
    es = scope.es
    if key is not None:
        value = _key(es, key)
        if es.name == "Observations":
            parsed = parse_observation_id(value)
            if parsed is None:
                raise NotFound(f"{value[:40]!r} is not an Observation id")
            ds, time = parsed
            if scope.equal is not None and scope.equal != ("datastream_id", ds):
                raise NotFound(f"no Observation {value!r} here")
            known = scope.datastream or await datastream_row(conn, ds)
            scope = Scope(
                scope.base,
                es,
                scope.equal,
                [*scope.extra, sql.SQL("phenomenon_time = {}").format(sql.Literal(time))],
                known,
                scope.tenant,
            )
            if known is None:
                raise NotFound(f"no Observation {value!r}")
        else:
            scope = Scope(
                scope.base,
                es,
                scope.equal,
                [*scope.extra, sql.SQL("id = {}").format(sql.Literal(value))],
                scope.datastream,
                scope.tenant,
            )
    rows, _, _ = await fetch(conn, scope, Options(top=1))
    if not rows:
        raise NotFound(f"no such {es.singular}" + (f" ({key})" if key else ""))
    return rows[0]


async def answer(
    conn: AsyncConnection, base: str, path: str, params: Mapping[str, str], *, tenant: str | None = None
) -> dict[str, Any] | str:
    """The answer to ``GET {base}/{path}?{params}``: a JSON object, or plain text for ``$value``; with ``tenant``,
    of that town's sites only (another town's entity is not found)."""
    opts = parse_options(params)
    segs = _segments(path)
    es = ENTITY_SETS.get(segs[0].name)
    if es is None:
        raise NotFound(f"no entity set {segs[0].name!r}; there are {', '.join(ENTITY_SETS)}")
    scope = Scope(base, es, tenant=tenant)
    row = await _one(conn, scope, segs[0].key) if segs[0].key is not None else None
    rest = segs[1:]
    while rest:
        seg, rest = rest[0], rest[1:]
        if seg.name == "$ref":
            if rest:
                raise NotFound("$ref ends a path")
            if row is not None:
                return {"@iot.selfLink": entity_link(base, scope.es, row["id"])}
            page = await collection(conn, scope, opts, path, params)
            page["value"] = [{"@iot.selfLink": o["@iot.selfLink"]} for o in page["value"]]
            return page
        if row is None:
            raise NotFound(f"a collection of {scope.es.name} has no {seg.name!r}; name one entity by its id first")
        nav = scope.es.navigation.get(seg.name)
        if nav is not None:
            value = row[nav.local]
            target = ENTITY_SETS[nav.target]
            via = row if scope.es.name == "Datastreams" and target.name == "Observations" else None
            extra: list[sql.Composable] = [sql.SQL("false")] if value is None else []
            scope = Scope(base, target, (nav.remote, value) if value is not None else None, extra, via, tenant)
            if nav.to_many:
                row = await _one(conn, scope, seg.key) if seg.key is not None else None
            elif seg.key is not None:
                raise NotFound(f"{seg.name} is a single entity; it takes no id")
            else:
                row = await _one(conn, scope, None)
            continue
        return await _property(conn, scope, row, seg, rest)
    if row is None:
        return await collection(conn, scope, opts, path, params)
    return (await render(conn, base, scope.es, [row], opts, tenant=tenant))[0]


async def _property(
    conn: AsyncConnection, scope: Scope, row: dict[str, Any], seg: _Segment, rest: list[_Segment]
) -> dict[str, Any] | str:
    obj = (await render(conn, scope.base, scope.es, [row], Options()))[0]
    name = "@iot.id" if seg.name == "id" else seg.name
    if seg.key is not None or name not in obj or "@iot.navigationLink" in name:
        raise NotFound(f"{scope.es.singular} has no property {seg.name!r}")
    if not rest:
        return {seg.name: obj[name]}
    if len(rest) == 1 and rest[0].name == "$value":
        value = obj[name]
        if isinstance(value, dict | list):
            raise FilterError(f"$value is for simple properties; {seg.name} is an object")
        return "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    raise NotFound(f"nothing under {seg.name!r} but $value")
