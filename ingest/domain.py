"""Decode a batch's uplinks by codec and map them to the domain tables of their devices' site kinds.

Rows are grouped by codec; each group is decoded in one vectorised call and mapped by the codec's ``domain()``
with the devices' parameters. By site kind, a row becomes a ``bin_levels``, ``parking_events``,
``passenger_counts`` or ``environment_readings`` row when the codec gave at least one of that table's
quantities (a parking row needs ``occupied``). Rows a codec rejects (unknown fPort, wrong payload size, ...)
come back as rejects with the codec's reason; their raw uplink is still stored.

The objects of script codecs are kept with their uplinks (:mod:`ingest.kept_objects`).

Passenger rows get a ``stop_id`` from :class:`~ingest.stops.StopTracker`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .codecs import Column
from .envelopes import EnvelopeBatch
from .kept_objects import COLUMNS as KEPT_COLUMNS
from .kept_objects import TABLE as KEPT_TABLE
from .kept_objects import KeptObjects
from .pgcopy import Field, Var, var_from_strings
from .registry import KINDS, Registry
from .stops import StopTracker

__all__ = ["TABLES", "DomainResult", "TableRows", "map_domain"]

#: table -> (site kind code, quantity columns with their COPY kinds, quantities of which one must be present)
TABLES: dict[str, tuple[int, tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "bin_levels": (
        KINDS["bin"],
        (
            ("distance_mm", "float4"),
            ("fill_pct", "float4"),
            ("temperature_c", "float4"),
            ("battery_v", "float4"),
            ("battery_pct", "float4"),
        ),
        ("distance_mm", "fill_pct", "temperature_c", "battery_v", "battery_pct"),
    ),
    "parking_events": (KINDS["space"], (("occupied", "bool"), ("battery_v", "float4")), ("occupied",)),
    "passenger_counts": (
        KINDS["vehicle"],
        (("pax_in", "int4"), ("pax_out", "int4"), ("pax_count", "int4")),
        ("pax_in", "pax_out", "pax_count"),
    ),
    "environment_readings": (
        KINDS["station"],
        (
            ("temperature_c", "float4"),
            ("humidity_pct", "float4"),
            ("co2_ppm", "float4"),
            ("light_lux", "float4"),
            ("motion", "int4"),
            ("battery_v", "float4"),
        ),
        ("temperature_c", "humidity_pct", "co2_ppm", "light_lux", "motion", "battery_v"),
    ),
}
#: the parent-site column of a table (the lot of a space, the line of a vehicle)
PARENT_COLUMN = {"parking_events": "lot_id", "passenger_counts": "line_id"}
#: short names in the ``pg_notify`` payload
NOTIFY_NAMES = {
    "parking_events": "parking",
    "bin_levels": "bins",
    "passenger_counts": "passengers",
    "environment_readings": "environment",
}


@dataclass
class TableRows:
    """Rows for one domain table: ``rows`` are uplink row numbers of the batch, ``fields`` the COPY columns."""

    table: str
    rows: np.ndarray
    columns: list[str]
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
    parts = {table: _Parts() for table in TABLES}
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
        for table, (kind, columns, needed) in TABLES.items():
            take = (kinds == kind) & decoded.ok
            if not take.any():
                continue
            any_present = np.zeros(decoded.n, dtype=bool)
            for q in needed:
                if q in quantities:
                    any_present |= quantities[q].present
            take &= any_present
            if not take.any():
                continue
            p = parts[table]
            p.rows.append(sel[take])
            p.quantities.append(
                {
                    q: Column(quantities[q].values[take], quantities[q].present[take])
                    for q, _ in columns
                    if q in quantities
                }
            )
            p.lat.append(lat[take])
            p.lon.append(lon[take])
    for table, p in parts.items():
        if p.rows:
            result.tables.append(_table_rows(table, p, batch, rows, dev, registry, stops, recent_stops))
    if kept.data:
        kept_rows, kept_fields = kept.fields(batch)
        result.tables.append(TableRows(KEPT_TABLE, kept_rows, list(KEPT_COLUMNS), kept_fields))
    return result


def _table_rows(
    table: str,
    p: _Parts,
    batch: EnvelopeBatch,
    rows: np.ndarray,
    dev: np.ndarray,
    registry: Registry,
    stops: StopTracker,
    recent_stops: Callable[[list[str]], dict[str, tuple[str, np.datetime64]]] | None,
) -> TableRows:
    _, columns, _ = TABLES[table]
    sel = np.concatenate(p.rows)
    r, d = rows[sel], dev[sel]
    names = ["time", "dev_eui", "site_id"]
    fields = [
        Field("timestamptz", batch.time[r]),
        Field("text", registry.dev_euis[d]),
        Field("text", registry.site_id.take(d), ~registry.has_site[d]),
    ]
    if table in PARENT_COLUMN:
        names.append(PARENT_COLUMN[table])
        fields.append(Field("text", registry.parent_id.take(d), ~registry.has_parent[d]))
    if table == "passenger_counts":
        vehicles = [registry.site_names[i] for i in d.tolist()]
        lines = [registry.parent_names[i] for i in d.tolist()]
        stop_ids = stops.resolve(
            vehicles, lines, batch.time[r], np.concatenate(p.lat), np.concatenate(p.lon), registry.stops, recent_stops
        )
        stop_var, stop_null = var_from_strings(stop_ids)
        names.append("stop_id")
        fields.append(Field("text", stop_var, stop_null))
    for q, kind in columns:
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
        names.append(q)
        fields.append(Field(kind, values, ~present))
    return TableRows(table, r, names, fields)
