"""Reading entity sets: collections with their query options, single entities, and ``$expand``.

A request resolves to an entity set and at most one equality on one of its columns (the navigation it came
through: ``Things(5)/Datastreams`` is Datastreams where ``thing_id = 5``). :func:`collection` answers it with
``$filter``, ``$orderby``, ``$top``/``$skip``, ``$count`` and ``@iot.nextLink``; :func:`render` turns rows into
JSON objects with ``@iot.id``, ``@iot.selfLink``, navigation links, ``$select`` and ``$expand`` (fetched per
navigation property for all parent rows at once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from .compile import compile_filter, compile_orderby
from .entities import ENTITY_SETS, EntitySet, Nav
from .filter import FilterError
from .observations import ALL_OBSERVATIONS, after_token, datastream_row, observation_source, skiptoken
from .options import Options

__all__ = ["Scope", "collection", "entity_json", "entity_link", "fetch", "render"]

Row = dict[str, Any]


@dataclass
class Scope:
    """Where a request is: the service root URL, the entity set and the navigation's equality (column, value)."""

    base: str
    es: EntitySet
    equal: tuple[str, Any] | None = None
    extra: list[sql.Composable] = field(default_factory=list)
    datastream: Row | None = None  # the Datastream row, when Observations are read through one
    tenant: str | None = None  # a town's service: only the entities of that tenant's sites


def entity_link(base: str, es: EntitySet, id_: Any) -> str:
    key = f"'{quote(str(id_), safe='-')}'" if es.id_type == "text" else str(id_)
    return f"{base}/{es.name}({key})"


async def _source(conn: AsyncConnection, scope: Scope) -> sql.Composable:
    if scope.es.name != "Observations":
        return scope.es.source
    if scope.datastream is not None:
        return observation_source(scope.datastream)
    if scope.equal and scope.equal[0] == "datastream_id":
        return observation_source(await datastream_row(conn, int(scope.equal[1])))
    return ALL_OBSERVATIONS


def _conditions(scope: Scope, opts: Options) -> list[sql.Composable]:
    conds = list(scope.extra)
    if scope.tenant is not None and scope.es.by_town:
        conds.append(sql.SQL("tenant = {}").format(sql.Literal(scope.tenant)))
    if scope.equal is not None:
        conds.append(sql.SQL("{} = {}").format(sql.Identifier(scope.equal[0]), sql.Literal(scope.equal[1])))
    if opts.filter is not None:
        conds.append(compile_filter(opts.filter, scope.es.columns))
    return conds


def _where(conds: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL("")


def _keyset(scope: Scope, opts: Options) -> tuple[bool, bool] | None:
    """(keyset paging, descending) for Observations ordered by time only; None for offset paging."""
    if scope.es.name != "Observations":
        return None
    order = compile_orderby(opts.orderby, scope.es.columns)
    if not order:
        return True, False
    if len(order) == 1 and order[0][0] == "phenomenon_time":
        return True, order[0][1]
    return None


def _order(scope: Scope, opts: Options, keyset: tuple[bool, bool] | None) -> sql.Composable:
    if keyset is not None:
        d = sql.SQL(" DESC" if keyset[1] else "")
        return sql.SQL(" ORDER BY phenomenon_time{0}, datastream_id{0}").format(d)
    items = compile_orderby(opts.orderby, scope.es.columns) + [("id", False)]
    return sql.SQL(" ORDER BY ") + sql.SQL(", ").join(
        sql.SQL("{}{}").format(sql.Identifier(c), sql.SQL(" DESC" if desc else "")) for c, desc in items
    )


async def fetch(conn: AsyncConnection, scope: Scope, opts: Options) -> tuple[list[Row], bool, int | None]:
    """Rows of a collection page, whether more follow, and the total count (with ``$count=true``)."""
    source = await _source(conn, scope)
    conds = _conditions(scope, opts)
    keyset = _keyset(scope, opts)
    page_conds = list(conds)
    if opts.skiptoken is not None:
        if keyset is None:
            raise FilterError("$skiptoken pages only Observations ordered by phenomenonTime")
        page_conds.append(after_token(opts.skiptoken, keyset[1]))
    query = sql.SQL("SELECT * FROM ({}) e{}{} LIMIT {} OFFSET {}").format(
        source, _where(page_conds), _order(scope, opts, keyset), sql.Literal(opts.top + 1), sql.Literal(opts.skip)
    )
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query)
    rows = await cur.fetchall()
    count = None
    if opts.count:
        await cur.execute(sql.SQL("SELECT count(*) AS n FROM ({}) e{}").format(source, _where(conds)))
        count = (await cur.fetchone() or {"n": 0})["n"]
    return rows[: opts.top], len(rows) > opts.top, count


async def collection(
    conn: AsyncConnection, scope: Scope, opts: Options, path: str, params: Mapping[str, str]
) -> dict[str, Any]:
    """The JSON of a collection page; ``path`` and ``params`` make its ``@iot.nextLink``."""
    rows, more, count = await fetch(conn, scope, opts)
    out: dict[str, Any] = {}
    if count is not None:
        out["@iot.count"] = count
    out["value"] = await render(conn, scope.base, scope.es, rows, opts, tenant=scope.tenant)
    if more and rows:
        nxt = dict(params)
        if _keyset(scope, opts) is not None:
            nxt.pop("$skip", None)
            nxt["$skiptoken"] = skiptoken(rows[-1])
        else:
            nxt["$skip"] = str(opts.skip + opts.top)
        nxt["$top"] = str(opts.top)
        out["@iot.nextLink"] = _link(f"{scope.base}/{path}", nxt)
    return out


def entity_json(base: str, es: EntitySet, row: Row) -> dict[str, Any]:
    """One row as its entity's JSON: ``@iot.id``, ``@iot.selfLink``, the properties and the navigation links."""
    link = entity_link(base, es, row["id"])
    obj: dict[str, Any] = {"@iot.id": row["id"], "@iot.selfLink": link, **es.body(row)}
    for nav_name in es.navigation:
        obj[f"{nav_name}@iot.navigationLink"] = f"{link}/{nav_name}"
    return obj


def _link(url: str, params: Mapping[str, str]) -> str:
    return url + "?" + urlencode(params, quote_via=quote, safe="$(),/'")


def _selected(key: str, select: tuple[str, ...]) -> bool:
    if key == "@iot.id":
        return "id" in select
    if key == "@iot.selfLink":
        return "selfLink" in select
    return key.split("@", 1)[0] in select


async def render(
    conn: AsyncConnection, base: str, es: EntitySet, rows: list[Row], opts: Options, *, tenant: str | None = None
) -> list[dict[str, Any]]:
    """Rows as SensorThings JSON objects, with ``$select`` applied and ``$expand`` fetched (of ``tenant``'s sites
    only, when given)."""
    unknown = [s for s in opts.select if s not in {*es.fields, "id", "selfLink", *es.navigation}]
    if unknown:
        raise FilterError(f"$select names unknown properties of {es.singular}: {', '.join(unknown)}")
    out = []
    for row in rows:
        obj = entity_json(base, es, row)
        if opts.select:
            unknown = [
                s for s in opts.select if s not in obj and s not in ("id", "selfLink") and s not in es.navigation
            ]
            if unknown:
                raise FilterError(f"$select names unknown properties of {es.singular}: {', '.join(unknown)}")
            obj = {k: v for k, v in obj.items() if _selected(k, opts.select)}
        out.append(obj)
    for name, nested in opts.expand.items():
        nav = es.navigation.get(name)
        if nav is None:
            raise FilterError(f"{es.singular} has no navigation property {name!r} to $expand")
        await _expand(conn, base, es, rows, out, name, nav, nested, tenant)
    return out


async def _expand(
    conn: AsyncConnection,
    base: str,
    es: EntitySet,
    rows: list[Row],
    out: list[dict[str, Any]],
    name: str,
    nav: Nav,
    opts: Options,
    tenant: str | None,
) -> None:
    target = ENTITY_SETS[nav.target]
    keys = sorted({r[nav.local] for r in rows if r[nav.local] is not None})
    if not keys:
        if nav.to_many:
            for obj in out:
                obj[name] = []
        return
    if not nav.to_many:
        scope = Scope(
            base,
            target,
            extra=[sql.SQL("{} = ANY({})").format(sql.Identifier(nav.remote), sql.Literal(keys))],
            tenant=tenant,
        )
        found, _, _ = await fetch(conn, scope, Options(top=len(keys), expand=opts.expand, select=opts.select))
        by_key = {r[nav.remote]: r for r in found}
        rendered = dict(
            zip(by_key, await render(conn, base, target, list(by_key.values()), opts, tenant=tenant), strict=True)
        )
        for row, obj in zip(rows, out, strict=True):
            if row[nav.local] in rendered:
                obj[name] = rendered[row[nav.local]]
        return
    for row, obj in zip(rows, out, strict=True):  # one page per parent (each an index range of its own)
        value = row[nav.local]
        known = row if es.name == "Datastreams" and target.name == "Observations" else None
        children, more, count = await fetch(
            conn, Scope(base, target, (nav.remote, value), datastream=known, tenant=tenant), opts
        )
        obj[name] = await render(conn, base, target, children, opts, tenant=tenant)
        if count is not None:
            obj[f"{name}@iot.count"] = count
        if more:
            nxt = {"$top": str(opts.top), "$skip": str(opts.skip + opts.top)}
            nxt.update({k: v for k, v in opts.source.items() if k in ("$orderby", "$filter")})
            obj[f"{name}@iot.nextLink"] = _link(f"{entity_link(base, es, row['id'])}/{name}", nxt)
