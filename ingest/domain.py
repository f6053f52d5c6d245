"""Decode a batch's uplinks by codec and map them to the domain tables of their devices' site kinds.

Rows are grouped by codec; each group is decoded in one vectorised call and mapped by the codec's ``domain()``
with the devices' parameters. By site kind, a row becomes a row of one of the reading tables described in
:mod:`stadtpuls.schema` (``bin_levels``, ``parking_events``, ``passenger_counts``, ``environment_readings``)
when the codec gave at least one of that table's needed quantities (a parking row needs ``occupied``). Rows a
codec rejects (unknown fPort, wrong payload size, ...) come back as rejects with the codec's reason; their raw
uplink is still stored.

The objects of script codecs are kept with their uplinks (:mod:`ingest.kept_objects`).

Passenger rows get a ``stop_id`` from :class:`~ingest.stops.StopTracker`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from stadtpuls.schema import READING_TABLES, UPLINK_DECODED, ReadingTable, Table

from .codecs import Column
from .envelopes import EnvelopeBatch
from .kept_objects import KeptObjects
from .pgcopy import Field, Var, var_from_strings
from .registry import KINDS, Registry
from .stops import StopTracker

__all__ = ["DomainResult", "TableRows", "map_domain"]


@dataclass
class TableRows:
    """Rows for one table keyed by uplink (a reading table, or ``uplink_decoded``): ``rows`` are uplink row numbers
    of the batch, ``fields`` the COPY columns in the table's column order."""

    table: Table
    rows: np.ndarray
    fields: list[Field]


@dataclass
class DomainResult:
    tables: list[TableRows] = field(default_factory=list)
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (uplink row, reason)


@dataclass
class _Parts:
    rows: list[np.ndarray] = field(default_factory=list)
    quantities: list[dict[str, Column]] = field(default_factory=list)
    lat: list[np.ndarray] = field(default_factory=list)
    lon: list[np.ndarray] = field(default_factory=list)


def _position(decoded_columns: dict[str, Column], n: int) -> tuple[np.ndarray, np.ndarray]:
    lat, lon = decoded_columns.get("latitude"), decoded_columns.get("longitude")
    if lat is None or lon is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    ok = lat.present & lon.present
    return (np.where(ok, lat.values, np.nan).astype(np.float64), np.where(ok, lon.values, np.nan).astype(np.float64))


def map_domain(
    batch: EnvelopeBatch,
    rows: np.ndarray,
    dev: np.ndarray,
    registry: Registry,
    stops: StopTracker,
    recent_stops: Callable[[list[str]], dict[str, tuple[str, np.datetime64]]] | None = None,
) -> DomainResult:
    """Decode uplink ``rows`` of ``batch`` (devices ``dev``, all registered) and build the domain table rows."""
    result = DomainResult()
    if len(rows) == 0:
        return result
    parts = {table.name: _Parts() for table in READING_TABLES}
    kept = KeptObjects()
    codec_of = registry.codec[dev]
    payloads = Var(batch.buf, batch.offsets)
    for c in np.unique(codec_of).tolist():
        sel = np.flatnonzero(codec_of == c)
        r, d = rows[sel], dev[sel]
        codec = registry.codecs[c] if c >= 0 else None
        if codec is None:
            name = registry.codec_ids[c] if c >= 0 else "?"
            result.rejects.extend((int(i), f"codec {name} is not installed") for i in r.tolist())
            continue
        sub = payloads.take(r)
        decoded = codec.decode_uplinks(batch.f_port[r].astype(np.int64), sub.buf, sub.offsets, batch.time[r])
        objects = decoded.kept_objects()
        if objects is not None:
            kept.add(r, registry.dev_euis[d], decoded.ok, codec.id, objects)
        bad = ~decoded.ok
        for i in np.flatnonzero(bad).tolist():
            reason = decoded.error[i] or "codec rejected the payload"
            result.rejects.append((int(r[i]), f"{codec.id}: {reason}"))
        quantities = codec.domain(decoded, registry.row_params(d))
        lat, lon = _position(decoded.columns, decoded.n)
        kinds = registry.kind[d]
        for table in READING_TABLES:
            take = (kinds == KINDS[table.site_kind]) & decoded.ok
            if not take.any():
                continue
            any_present = np.zeros(decoded.n, dtype=bool)
            for q in table.needed:
                if q in quantities:
                    any_present |= quantities[q].present
            take &= any_present
            if not take.any():
                continue
            p = parts[table.name]
            p.rows.append(sel[take])
            p.quantities.append(
                {
                    q: Column(quantities[q].values[take], quantities[q].present[take])
                    for q in table.quantities
                    if q in quantities
                }
            )
            p.lat.append(lat[take])
            p.lon.append(lon[take])
    for table in READING_TABLES:
        p = parts[table.name]
        if p.rows:
            result.tables.append(_table_rows(table, p, batch, rows, dev, registry, stops, recent_stops))
    if kept.data:
        kept_rows, kept_fields = kept.fields(batch)
        result.tables.append(TableRows(UPLINK_DECODED, kept_rows, kept_fields))
    return result


def _table_rows(
    table: ReadingTable,
    p: _Parts,
    batch: EnvelopeBatch,
    rows: np.ndarray,
    dev: np.ndarray,
    registry: Registry,
    stops: StopTracker,
    recent_stops: Callable[[list[str]], dict[str, tuple[str, np.datetime64]]] | None,
) -> TableRows:
    """The COPY fields of ``table`` in its column order (:mod:`stadtpuls.schema`)."""
    sel = np.concatenate(p.rows)
    r, d = rows[sel], dev[sel]
    fields = [
        Field("timestamptz", batch.time[r]),
        Field("text", registry.dev_euis[d]),
        Field("text", registry.site_id.take(d), ~registry.has_site[d]),
    ]
    if table.parent:
        fields.append(Field("text", registry.parent_id.take(d), ~registry.has_parent[d]))
    if "stop_id" in table.column_names:
        vehicles = [registry.site_names[i] for i in d.tolist()]
        lines = [registry.parent_names[i] for i in d.tolist()]
        stop_ids = stops.resolve(
            vehicles, lines, batch.time[r], np.concatenate(p.lat), np.concatenate(p.lon), registry.stops, recent_stops
        )
        stop_var, stop_null = var_from_strings(stop_ids)
        fields.append(Field("text", stop_var, stop_null))
    for q in table.quantities:
        kind = table.kind(q)
        values = np.concatenate(
            [qs[q].values if q in qs else np.zeros(len(rr)) for qs, rr in zip(p.quantities, p.rows, strict=True)]
        )
        present = np.concatenate(
            [
                qs[q].present if q in qs else np.zeros(len(rr), dtype=bool)
                for qs, rr in zip(p.quantities, p.rows, strict=True)
            ]
        )
        if kind == "int4":
            values = np.round(np.where(present, values, 0)).astype(np.int32)
        fields.append(Field(kind, values, ~present))
    return TableRows(table, r, fields)
