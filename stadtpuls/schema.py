"""The stored tables as the code sees them: the columns the ingest writes, with their binary COPY types, and the
announcement of new readings.

The migrations (``stadtpuls/migrations``) create the tables; this module describes, once, the columns the writer
fills, in COPY order, each with its :mod:`~stadtpuls.ingest.pgcopy` kind (a test checks both against a migrated
database). From it derive the writer's COPY column lists and staging tables, the reading tables the domain mapping
fills (site kind, parent column, quantities), the NOTIFY payload keys that the writer sends and ``api/live.py``
reads, and the tests' list of tables to empty. The configuration tables (towns, sites, devices) are written one
row at a time: :func:`insert_row` and :func:`assignments` build those statements for the API and the command line.

After a commit that stored readings, the writer sends ``NOTIFY stadtpuls`` with the payload
``{"bins": n, "parking": n, "passengers": n, "environment": n}`` (readings stored per reading table, by its
:attr:`ReadingTable.notify_key`): :func:`notify_payload` writes it, :func:`notify_counts` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import sql

__all__ = [
    "ALERT_TABLES",
    "BIN_LEVELS",
    "CONFIGURATION_TABLES",
    "DEAD_LETTERS",
    "DEFAULT_TENANT",
    "RESET_TENANTS",
    "DEVICE_STATE",
    "ENVIRONMENT_READINGS",
    "FCNT_GAPS",
    "INGEST_TABLES",
    "NOTIFY_CHANNEL",
    "PARKING_EVENTS",
    "PASSENGER_COUNTS",
    "READING_TABLES",
    "ROLLUP_TABLES",
    "SILENT_FACTOR",
    "SOURCE_TABLES",
    "UPLINKS",
    "UPLINK_DECODED",
    "ReadingTable",
    "Table",
    "assignments",
    "insert_row",
    "notify_counts",
    "notify_payload",
]

#: a reading holds until this many report intervals of its device have passed without another (its heartbeat
#: missed), then its space or vehicle is unknown: the parking summaries and the rollups (migration 0008) use it
SILENT_FACTOR = 2.5
#: the rollups the ingest keeps current, their queue (migrations 0008, 0019) and the history answers' kept days
#: (0024); the daily ones of lots and lines and both of bins are continuous aggregates on TimescaleDB
ROLLUP_TABLES = (
    "parking_lot_15min",
    "parking_lot_hourly",
    "parking_lot_daily",
    "line_load_15min",
    "line_load_hourly",
    "line_load_daily",
    "bin_fill_hourly",
    "bin_fill_daily",
    "rollup_dirty",
    "history_fragments",  # the kept days of history answers (migration 0024), forgotten by the rollup refresh
)

#: the channel of the writer's NOTIFY after a commit that stored readings
NOTIFY_CHANNEL = "stadtpuls"


@dataclass(frozen=True)
class Table:
    """A table the writer fills: ``columns`` are ``(name, COPY kind)`` in COPY order (columns the database fills
    itself, such as defaults and generated columns, are left out)."""

    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def staging(self) -> str:
        """The writer's temporary table of the same columns, filled by COPY and emptied at each commit."""
        return "stage_" + self.name

    def kind(self, column: str) -> str:
        return dict(self.columns)[column]


@dataclass(frozen=True)
class ReadingTable(Table):
    """A typed reading table: one row per uplink of a device whose site has ``site_kind``.

    Columns: ``time``, ``dev_eui``, ``site_id``, then ``parent`` (the lot of a space, the line of a vehicle), then
    ``stop_id`` for passenger counts, then the ``quantities`` (the domain mapping's names). A row is written when
    at least one of the ``needed`` quantities is present.
    """

    site_kind: str = ""
    parent: str | None = None
    quantities: tuple[str, ...] = ()
    needed: tuple[str, ...] = ()
    notify_key: str = ""
    #: the kind of rollup this table feeds per :attr:`rollup_key` (``rollup_dirty.kind``, migrations 0008, 0019),
    #: or None
    rollup: str | None = None

    @property
    def rollup_key(self) -> str:
        """The column a rollup is kept per: the parent (lot, line), else the site (a bin)."""
        return self.parent or "site_id"


def _reading_table(
    name: str,
    site_kind: str,
    notify_key: str,
    quantities: tuple[tuple[str, str], ...],
    *,
    parent: str | None = None,
    stop: bool = False,
    needed: tuple[str, ...] | None = None,
    rollup: str | None = None,
) -> ReadingTable:
    columns: tuple[tuple[str, str], ...] = (("time", "timestamptz"), ("dev_eui", "text"), ("site_id", "text"))
    columns += ((parent, "text"),) if parent else ()
    columns += (("stop_id", "text"),) if stop else ()
    names = tuple(q for q, _ in quantities)
    return ReadingTable(
        name,
        columns + quantities,
        site_kind=site_kind,
        parent=parent,
        quantities=names,
        needed=names if needed is None else needed,
        notify_key=notify_key,
        rollup=rollup,
    )


UPLINKS = Table(
    "uplinks",
    (
        ("time", "timestamptz"),
        ("dedup_key", "int8"),
        ("dev_eui", "text"),
        ("f_cnt", "int8"),
        ("f_port", "int2"),
        ("payload", "bytea"),
        ("rssi", "float4"),
        ("snr", "float4"),
        ("dr", "int2"),
        ("sf", "int2"),
        ("frequency", "int8"),
        ("gateways", "int2"),
        ("gateway_id", "text"),
        ("lns", "text"),
        ("simulated", "bool"),
        ("received_at", "timestamptz"),
    ),
)
BIN_LEVELS = _reading_table(
    "bin_levels",
    "bin",
    "bins",
    (
        ("distance_mm", "float4"),
        ("fill_pct", "float4"),
        ("temperature_c", "float4"),
        ("battery_v", "float4"),
        ("battery_pct", "float4"),
    ),
    rollup="bin_fill",
)
PARKING_EVENTS = _reading_table(
    "parking_events",
    "space",
    "parking",
    (("occupied", "bool"), ("battery_v", "float4")),
    parent="lot_id",
    needed=("occupied",),
    rollup="parking_lot",
)
PASSENGER_COUNTS = _reading_table(
    "passenger_counts",
    "vehicle",
    "passengers",
    (("pax_in", "int4"), ("pax_out", "int4"), ("pax_count", "int4")),
    parent="line_id",
    stop=True,
    rollup="line_load",
)
ENVIRONMENT_READINGS = _reading_table(
    "environment_readings",
    "station",
    "environment",
    (
        ("temperature_c", "float4"),
        ("humidity_pct", "float4"),
        ("co2_ppm", "float4"),
        ("light_lux", "float4"),
        ("motion", "int4"),
        ("battery_v", "float4"),
    ),
)
READING_TABLES = (BIN_LEVELS, PARKING_EVENTS, PASSENGER_COUNTS, ENVIRONMENT_READINGS)
#: the columns of a dead letter the writer copies (key and repeat count are derived in SQL)
DEAD_LETTERS = Table(
    "dead_letters",
    (
        ("received_at", "timestamptz"),
        ("topic", "text"),
        ("stage", "text"),
        ("reason", "text"),
        ("dev_eui", "text"),
        ("lns", "text"),
        ("payload", "bytea"),
    ),
)
FCNT_GAPS = Table(
    "fcnt_gaps", (("time", "timestamptz"), ("dev_eui", "text"), ("f_cnt_from", "int8"), ("f_cnt_to", "int8"))
)
DEVICE_STATE = Table(
    "device_state",
    (
        ("dev_eui", "text"),
        ("last_f_cnt", "int8"),
        ("last_time", "timestamptz"),
        ("session", "text"),
        ("last_join", "timestamptz"),
    ),
)
#: the objects script codecs decoded, kept with their uplinks (keyed like the uplink; :mod:`ingest.kept_objects`)
UPLINK_DECODED = Table(
    "uplink_decoded",
    (
        ("time", "timestamptz"),
        ("dedup_key", "int8"),
        ("dev_eui", "text"),
        ("codec_id", "text"),
        ("codec_version", "int4"),
        ("data", "jsonb"),
        ("warnings", "jsonb"),
    ),
)
#: every table the ingest writes
INGEST_TABLES = (UPLINKS, *READING_TABLES, UPLINK_DECODED, DEAD_LETTERS, FCNT_GAPS, DEVICE_STATE)
#: what the ingest keeps about its sources (migration 0010): backfill cursors and unfetchable gaps, closed gaps
SOURCE_TABLES = ("source_cursors", "backfill_gaps", "fcnt_gaps_closed")
#: the tables the API and the commands write (configuration)
CONFIGURATION_TABLES = ("devices", "sites", "api_keys", "codec_scripts")
#: the tenant (municipality) of a one-town install and of every row from before tenants (migration 0014)
DEFAULT_TENANT = "default"
#: the tenants as migration 0014 leaves them (tenant ``default`` alone, every field the hub's); deletes only towns
#: that no site, device or key names (tests start each registry from here)
RESET_TENANTS = f"""
DELETE FROM tenants t WHERE slug <> '{DEFAULT_TENANT}'
    AND NOT EXISTS (SELECT 1 FROM sites WHERE tenant = t.slug)
    AND NOT EXISTS (SELECT 1 FROM devices WHERE tenant = t.slug)
    AND NOT EXISTS (SELECT 1 FROM api_keys WHERE tenant = t.slug);
UPDATE tenants SET name = '{DEFAULT_TENANT}', timezone = NULL, depots = NULL, service_days = NULL,
    pickup_start_hour = NULL, brand_name = NULL, logo_url = NULL, colour = NULL WHERE slug = '{DEFAULT_TENANT}'
"""
#: the tables of the alerts service and the operators' alert settings (rules, channels, alerts, outbox, day summaries)
ALERT_TABLES = (
    "alert_rules",
    "alerts",
    "alert_events",
    "notification_channels",
    "notifications",
    "device_daily",
    "device_health",
    "alert_summary_state",
    "device_summary_seen",
    "parking_window",
    "parking_window_state",
    "ingest_status",
)


def notify_payload(stored: Mapping[str, int]) -> str:
    """The NOTIFY payload for readings stored per reading table (``stored[table name]``, absent = 0)."""
    return orjson.dumps({t.notify_key: stored.get(t.name, 0) for t in READING_TABLES}).decode()


def notify_counts(payload: str) -> dict[str, Any] | None:
    """Readings stored per notify key, from a NOTIFY payload; None when the payload is not one of ours."""
    try:
        counts = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return counts if isinstance(counts, dict) else None


def insert_row(table: str, values: Mapping[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    """The INSERT of one row of ``values`` (column -> value) into ``table``, and its parameters."""
    names = list(values)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(map(sql.Placeholder, names)),
    )
    return query, dict(values)


def assignments(names: Iterable[str]) -> sql.Composed:
    """The SET list of an UPDATE of the columns ``names``, each from the parameter of its name, and of
    ``updated_at``; the statement's other parameters take names starting with ``_``."""
    sets = [sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in names]
    return sql.SQL(", ").join([*sets, sql.SQL("updated_at = now()")])
