"""The Observations source: stored readings as SensorThings Observations.

One Datastream is one device and one column of a reading table, so the Observations of a known Datastream are
one index range of that table (primary key ``(dev_eui, time)``): :func:`observation_source` reads only that table
when the request names the Datastream (``Datastreams(id)/Observations``, ``$expand=Observations``,
``Observations('<datastream>-<time>')``), and otherwise a ``UNION ALL`` over every reading column.

Paging is by key, not by offset: the ``@iot.nextLink`` of a collection ordered by ``phenomenonTime`` carries a
``$skiptoken`` with the last row's time and Datastream (:func:`skiptoken`), and the next page starts after it
(:func:`after_token`), so page 1000 of a year of readings costs what page 1 does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from .entities import DATASTREAM_FACTOR, ENTITY_SETS, datastream_columns
from .filter import FilterError
from .quantities import QUANTITIES

__all__ = ["ALL_OBSERVATIONS", "after_token", "datastream_row", "observation_source", "skiptoken"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = sql.SQL("{ds}::text || '-' || (extract(epoch FROM {t}) * 1000000)::bigint")


def _value(column: str) -> sql.Composable:
    col = sql.SQL("r.{}").format(sql.Identifier(column))
    if QUANTITIES[column].is_truth:
        return sql.SQL("{}::int::float8").format(col)
    return sql.SQL("{}::numeric::float8").format(col)  # the stored value as written (real 42.3, not 42.2999...)


_DATASTREAM = (
    sql.SQL("SELECT * FROM ({}) e WHERE device_id = %s AND property_id = %s")
    .format(ENTITY_SETS["Datastreams"].source)
    .as_string(None)
)  # composed once: the same text each time, so the server prepares its plan once


async def datastream_row(conn: AsyncConnection, datastream_id: int) -> dict[str, Any] | None:
    """The Datastreams row of ``datastream_id`` (found by its device and ObservedProperty, both indexed)."""
    device, prop = divmod(datastream_id, DATASTREAM_FACTOR)
    if device > 2**31 - 1:
        return None
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(_DATASTREAM, (device, prop))
    return await cur.fetchone()


def _one(ds: dict[str, Any]) -> sql.Composable:
    return sql.SQL(
        """SELECT {ds}::int AS datastream_id, r.time AS phenomenon_time, {value} AS result, fs.public_id AS foi_id,
                  {id} AS id, {tenant}::text AS tenant
           FROM {tbl} r LEFT JOIN sites fs ON fs.site_id = r.site_id AND fs.lat IS NOT NULL AND fs.lon IS NOT NULL
           WHERE r.dev_eui = {dev} AND r.{col} IS NOT NULL"""
    ).format(
        ds=sql.Literal(ds["id"]),
        tenant=sql.Literal(ds["tenant"]),
        value=_value(ds["col"]),
        id=_ID.format(ds=sql.Literal(ds["id"]), t=sql.SQL("r.time")),
        tbl=sql.Identifier(ds["tbl"]),
        dev=sql.Literal(ds["dev_eui"]),
        col=sql.Identifier(ds["col"]),
    )


def _all() -> sql.Composable:
    branches = [
        sql.SQL(
            """SELECT d.public_id * {factor} + {prop} AS datastream_id, r.time AS phenomenon_time, {value} AS result,
                      r.site_id, s.tenant
               FROM {tbl} r JOIN devices d ON d.dev_eui = r.dev_eui
               JOIN sites s ON s.site_id = d.site_id AND s.kind = {kind}
               WHERE r.{col} IS NOT NULL"""
        ).format(
            factor=sql.Literal(DATASTREAM_FACTOR),
            prop=sql.Literal(prop),
            value=_value(col),
            tbl=sql.Identifier(tbl),
            kind=sql.Literal(kind),
            col=sql.Identifier(col),
        )
        for kind, tbl, col, prop in datastream_columns()
    ]
    return sql.SQL(
        """SELECT o.datastream_id, o.phenomenon_time, o.result, fs.public_id AS foi_id, {id} AS id, o.tenant
           FROM ({union}) o
           LEFT JOIN sites fs ON fs.site_id = o.site_id AND fs.lat IS NOT NULL AND fs.lon IS NOT NULL"""
    ).format(
        id=_ID.format(ds=sql.SQL("o.datastream_id"), t=sql.SQL("o.phenomenon_time")),
        union=sql.SQL(" UNION ALL ").join(branches),
    )


ALL_OBSERVATIONS = _all()
_NONE = sql.SQL(
    "SELECT NULL::int AS datastream_id, NULL::timestamptz AS phenomenon_time, NULL::float8 AS result, "
    "NULL::int AS foi_id, NULL::text AS id, NULL::text AS tenant WHERE false"
)


def observation_source(datastream: dict[str, Any] | None) -> sql.Composable:
    """The Observations of one Datastream (its row of the Datastreams source: one reading table), or none when
    there is no such Datastream. :data:`ALL_OBSERVATIONS` is the source of all."""
    return _one(datastream) if datastream is not None else _NONE


def skiptoken(row: dict[str, Any]) -> str:
    """The paging token after ``row``: its time in microseconds since the epoch and its Datastream id."""
    delta: timedelta = row["phenomenon_time"] - _EPOCH
    micros = delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds
    return f"{micros}.{row['datastream_id']}"


def after_token(token: str, descending: bool) -> sql.Composable:
    """The condition for the rows after ``token`` in (phenomenonTime, Datastream) order."""
    micros, dot, ds = token.partition(".")
    if not dot or not micros.lstrip("-").isdigit() or not ds.isdigit():
        raise FilterError(f"$skiptoken {token[:40]!r} is not one this server issued")
    t = _EPOCH + timedelta(microseconds=int(micros))
    op = sql.SQL("<" if descending else ">")
    return sql.SQL("(phenomenon_time {op} {t} OR (phenomenon_time = {t} AND datastream_id {op} {ds}))").format(
        op=op, t=sql.Literal(t), ds=sql.Literal(int(ds))
    )
