"""The SensorThings data model over stadtpuls's store: which stored rows are which entities.

=====================  =======================================================================================
Thing                  a site (bin, lot, space, line, vehicle, stop, station); ``@iot.id`` = ``sites.public_id``
Location               a site's position (GeoJSON Point), same id as its Thing
FeatureOfInterest      the same position, seen as what the observations are about
Sensor                 a device model, i.e. its codec (``dragino/ldds75``), described by the TTN Device Repository
ObservedProperty       a quantity (:data:`QUANTITIES`: fill level, occupancy, passengers on board, temperature...)
Datastream             one device and one quantity: ``@iot.id`` = ``devices.public_id * 100 + ObservedProperty id``
Observation            one stored reading of that quantity: ``@iot.id`` = ``'<datastream>-<epoch microseconds>'``
HistoricalLocation     none (sites do not move)
=====================  =======================================================================================

A town's service (``/t/{slug}/sta/v1.1``) shows the entities of its sites: the sources of Things, Locations,
FeaturesOfInterest, Datastreams and Observations carry the ``tenant`` of their site (:attr:`EntitySet.by_town`);
Sensors (device models) and ObservedProperties (quantities) are catalogues, the same in every town.

Each entity set is a SQL ``SELECT`` with named columns (:attr:`EntitySet.source`); ``$filter`` and ``$orderby``
paths map to those columns (:attr:`EntitySet.columns`), navigation properties to a column pair
(:class:`Nav`). The reading tables and their quantities come from :mod:`stadtpuls.schema`; this module only adds
what SensorThings needs to say about each quantity (UCUM unit, observation type, definition).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from stadtpuls.schema import READING_TABLES

from .quantities import QUANTITIES, QUANTITY_BY_ID

__all__ = [
    "ENTITY_SETS",
    "Column",
    "EntitySet",
    "Nav",
    "datastream_columns",
    "observation_result",
    "OBSERVATION_COLUMNS",
    "DATASTREAM_FACTOR",
    "parse_observation_id",
]

DEVICE_REPOSITORY = "https://github.com/TheThingsNetwork/lorawan-devices/blob/master/vendor/{}.yaml"
#: the multiplier of a device's public id in a Datastream id (room for 99 quantities)
DATASTREAM_FACTOR = 100

SITE_KINDS: Mapping[str, str] = {
    "bin": "waste container",
    "lot": "parking lot",
    "space": "parking space",
    "line": "bus line",
    "vehicle": "bus",
    "stop": "bus stop",
    "station": "environment station",
}


@dataclass(frozen=True)
class Column:
    """A column of an entity set's source: its SQL name and type (int, float, text, time, bool, point, json)."""

    name: str
    type: str


@dataclass(frozen=True)
class Nav:
    """A navigation property: the target's rows whose ``remote`` column equals the parent's ``local`` column."""

    target: str
    to_many: bool
    local: str
    remote: str


@dataclass(frozen=True)
class EntitySet:
    name: str
    singular: str
    source: sql.Composable
    columns: Mapping[str, Column]
    navigation: Mapping[str, Nav]
    body: Callable[[Mapping[str, Any]], dict[str, Any]]
    fields: tuple[str, ...]  # the keys of ``body``, for $select
    id_type: str = "int"
    by_town: bool = True  # its source has the ``tenant`` of each row (a site's); False: one catalogue for all towns


def _sensor_id(codec: str) -> sql.Composable:
    """A stable 28-bit id for a codec name, computed in SQL (the first 28 bits of its MD5)."""
    return sql.SQL("(('x' || left(md5({}), 7))::bit(28)::int)").format(sql.SQL(codec))


def _kind_text(column: str) -> sql.Composable:
    cases = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(k), sql.Literal(v)) for k, v in SITE_KINDS.items()
    )
    return sql.SQL("(CASE {} {} ELSE {} END)").format(sql.SQL(column), cases, sql.SQL(column))


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _point(row: Mapping[str, Any]) -> dict[str, Any] | None:
    if row.get("lon") is None or row.get("lat") is None:
        return None
    return {"type": "Point", "coordinates": [row["lon"], row["lat"]]}


def _values(rows: list[tuple[Any, ...]]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, r))) for r in rows)


def datastream_columns() -> list[tuple[str, str, str, int]]:
    """(site kind, reading table, column, ObservedProperty id) for every quantity a reading table stores."""
    return [(t.site_kind, t.name, q, QUANTITIES[q].id) for t in READING_TABLES for q in t.quantities]


def parse_observation_id(text: str) -> tuple[int, datetime] | None:
    """The Datastream id and reading time in an Observation's ``@iot.id``; None when it is not one."""
    ds, dash, micros = text.partition("-")
    if not dash or not ds.isdigit() or not micros.isdigit():
        return None
    return int(ds), datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(micros))


# --- sources --------------------------------------------------------------------------------------------------

_SITES = sql.SQL(
    """SELECT s.public_id AS id, s.name, {kind} || ' ' || s.name AS description, s.site_id, s.kind,
              p.site_id AS parent_site, s.lat, s.lon, point(s.lon, s.lat) AS location, s.waste_type, s.capacity,
              s.volume_l, s.threshold_pct, s.tenant
       FROM sites s LEFT JOIN sites p ON p.site_id = s.parent_id"""
).format(kind=_kind_text("s.kind"))
_PLACES = sql.SQL("SELECT * FROM ({}) t WHERE lat IS NOT NULL AND lon IS NOT NULL").format(_SITES)
_SENSORS = sql.SQL(
    """SELECT DISTINCT ON (codec) {id} AS id, codec AS name, codec
       FROM devices ORDER BY codec"""
).format(id=_sensor_id("codec"))
_PROPERTIES = sql.SQL("SELECT * FROM (VALUES {}) q(id, name, definition, description)").format(
    _values([(q.id, q.name, q.definition, q.description) for q in QUANTITIES.values()])
)
_DATASTREAMS = sql.SQL(
    """SELECT d.public_id * {factor} + q.property_id AS id, s.name || ' ' || p.name AS name,
              p.description || ', measured by device ' || d.dev_eui || ' (' || d.codec || ')' AS description,
              s.public_id AS thing_id, {sensor} AS sensor_id, q.property_id, d.dev_eui, d.codec, q.tbl, q.col,
              d.public_id AS device_id,
              p.name AS property_name, s.tenant
       FROM devices d JOIN sites s ON s.site_id = d.site_id
       JOIN (VALUES {columns}) q(kind, tbl, col, property_id) ON q.kind = s.kind
       JOIN ({properties}) p ON p.id = q.property_id"""
).format(
    factor=sql.Literal(DATASTREAM_FACTOR),
    sensor=_sensor_id("d.codec"),
    columns=_values(datastream_columns()),
    properties=_PROPERTIES,
)
_HISTORICAL = sql.SQL("SELECT NULL::int AS id, NULL::timestamptz AS time, NULL::int AS thing_id WHERE false")


def _thing_body(row: Mapping[str, Any]) -> dict[str, Any]:
    props = {"siteId": row["site_id"], "kind": row["kind"]}
    if row["parent_site"]:
        props["parent"] = row["parent_site"]
    for key, name in (("waste_type", "wasteType"), ("capacity", "capacity"), ("volume_l", "volumeLitres")):
        if row.get(key) is not None:
            props[name] = row[key]
    if row.get("threshold_pct") is not None:
        props["thresholdPercent"] = row["threshold_pct"]
    return {"name": row["name"], "description": row["description"], "properties": props}


def _location_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "encodingType": "application/geo+json",
        "location": _point(row),
        "properties": {"siteId": row["site_id"]},
    }


def _feature_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": row["description"],
        "encodingType": "application/geo+json",
        "feature": _point(row),
        "properties": {"siteId": row["site_id"]},
    }


def _sensor_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "description": f"LoRaWAN device model {row['codec']}, decoded by the stadtpuls codec of that name",
        "encodingType": "text/html",
        "metadata": DEVICE_REPOSITORY.format(row["codec"]),
        "properties": {"codec": row["codec"]},
    }


def _property_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": row["name"], "definition": row["definition"], "description": row["description"], "properties": {}}


def _datastream_body(row: Mapping[str, Any]) -> dict[str, Any]:
    q = QUANTITY_BY_ID[row["property_id"]]
    return {
        "name": row["name"],
        "description": row["description"],
        "unitOfMeasurement": q.unit,
        "observationType": q.observation_type,
        "properties": {"devEui": row["dev_eui"], "codec": row["codec"]},
    }


def observation_result(property_id: int, value: float | None) -> Any:
    """A stored value as the Observation's ``result`` of its quantity's type."""
    q = QUANTITY_BY_ID[property_id]
    if value is None:
        return None
    if q.is_truth:
        return bool(value)
    if q.is_count:
        return int(value)
    return value


def _observation_body(row: Mapping[str, Any]) -> dict[str, Any]:
    t = _iso(row["phenomenon_time"])
    return {
        "phenomenonTime": t,
        "resultTime": t,
        "result": observation_result(row["datastream_id"] % DATASTREAM_FACTOR, row["result"]),
    }


def _historical_body(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"time": _iso(row["time"])}


def _cols(**kw: str) -> dict[str, Column]:
    return {path.replace("__", "/"): Column(*spec.split(":")) for path, spec in kw.items()}


_SITE_COLS = _cols(
    id="id:int",
    name="name:text",
    description="description:text",
    properties__siteId="site_id:text",
    properties__kind="kind:text",
    properties__parent="parent_site:text",
    properties__wasteType="waste_type:text",
    properties__capacity="capacity:int",
)
OBSERVATION_COLUMNS = _cols(
    id="id:text",
    phenomenonTime="phenomenon_time:time",
    resultTime="phenomenon_time:time",
    result="result:float",
    Datastream__id="datastream_id:int",
    FeatureOfInterest__id="foi_id:int",
)

ENTITY_SETS: Mapping[str, EntitySet] = {
    s.name: s
    for s in (
        EntitySet(
            "Things",
            "Thing",
            _SITES,
            {**_SITE_COLS, "Locations/location": Column("location", "point"), "location": Column("location", "point")},
            {
                "Locations": Nav("Locations", True, "id", "id"),
                "HistoricalLocations": Nav("HistoricalLocations", True, "id", "thing_id"),
                "Datastreams": Nav("Datastreams", True, "id", "thing_id"),
            },
            _thing_body,
            ("name", "description", "properties"),
        ),
        EntitySet(
            "Locations",
            "Location",
            _PLACES,
            {**_SITE_COLS, "location": Column("location", "point")},
            {
                "Things": Nav("Things", True, "id", "id"),
                "HistoricalLocations": Nav("HistoricalLocations", True, "id", "thing_id"),
            },
            _location_body,
            ("name", "description", "encodingType", "location", "properties"),
        ),
        EntitySet(
            "HistoricalLocations",
            "HistoricalLocation",
            _HISTORICAL,
            _cols(id="id:int", time="time:time"),
            {"Thing": Nav("Things", False, "thing_id", "id"), "Locations": Nav("Locations", True, "thing_id", "id")},
            _historical_body,
            ("time",),
            by_town=False,
        ),
        EntitySet(
            "Sensors",
            "Sensor",
            _SENSORS,
            _cols(id="id:int", name="name:text", properties__codec="codec:text"),
            {"Datastreams": Nav("Datastreams", True, "id", "sensor_id")},
            _sensor_body,
            ("name", "description", "encodingType", "metadata", "properties"),
            by_town=False,
        ),
        EntitySet(
            "ObservedProperties",
            "ObservedProperty",
            _PROPERTIES,
            _cols(id="id:int", name="name:text", definition="definition:text", description="description:text"),
            {"Datastreams": Nav("Datastreams", True, "id", "property_id")},
            _property_body,
            ("name", "definition", "description", "properties"),
            by_town=False,
        ),
        EntitySet(
            "Datastreams",
            "Datastream",
            _DATASTREAMS,
            _cols(
                id="id:int",
                name="name:text",
                description="description:text",
                properties__devEui="dev_eui:text",
                properties__codec="codec:text",
                Thing__id="thing_id:int",
                Sensor__id="sensor_id:int",
                ObservedProperty__id="property_id:int",
                ObservedProperty__name="property_name:text",
            ),
            {
                "Thing": Nav("Things", False, "thing_id", "id"),
                "Sensor": Nav("Sensors", False, "sensor_id", "id"),
                "ObservedProperty": Nav("ObservedProperties", False, "property_id", "id"),
                "Observations": Nav("Observations", True, "id", "datastream_id"),
            },
            _datastream_body,
            ("name", "description", "unitOfMeasurement", "observationType", "properties"),
        ),
        EntitySet(
            "Observations",
            "Observation",
            sql.SQL(""),  # built per query by .observations (one reading table when the Datastream is known)
            OBSERVATION_COLUMNS,
            {
                "Datastream": Nav("Datastreams", False, "datastream_id", "id"),
                "FeatureOfInterest": Nav("FeaturesOfInterest", False, "foi_id", "id"),
            },
            _observation_body,
            ("phenomenonTime", "resultTime", "result"),
            id_type="text",
        ),
        EntitySet(
            "FeaturesOfInterest",
            "FeatureOfInterest",
            _PLACES,
            {**_SITE_COLS, "feature": Column("location", "point")},
            {"Observations": Nav("Observations", True, "id", "foi_id")},
            _feature_body,
            ("name", "description", "encodingType", "feature", "properties"),
        ),
    )
}
