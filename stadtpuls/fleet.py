"""The device registry file: sites and devices as YAML or CSV, validated row by row and upserted idempotently.

YAML: ``{"sites": [site, ...], "devices": [device, ...], "codecs": [{id, map}, ...]}``; a ``codecs`` entry sets
the readings map of a stored script codec (see ``stadtpuls codecs add --map``). CSV: one row per device (columns
of :data:`DEVICE_COLUMNS`), optionally with the device's site in ``site_*`` columns and device parameters in
``param_*`` columns; a row with an empty ``dev_eui`` declares only its site (a lot, a line). Device codecs are
checked against the built-ins and the script codecs stored in the database when the file is applied.

Every site and device of a file goes to one tenant (``apply(..., tenant=...)``, default ``default``). Site ids
and DevEUIs are unique across the hub: a file naming a site or device of another tenant, or linking to another
tenant's site (``parent_id``, a device's ``site_id``), is refused as a whole, each such row reported.

Exceptions::

    FleetError          the file cannot be read at all, or its tenant does not exist (attributes: source)
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import yaml
from opening_hours import OpeningHours, ParserError  # type: ignore[attr-defined]  # missing from its stub
from psycopg.types.json import Jsonb

from .schema import DEFAULT_TENANT
from .tenants import unknown_tenant

__all__ = [
    "CONTROL_CHARS",
    "DEVICE_COLUMNS",
    "LOT_TYPES",
    "PARK_AND_RIDE",
    "PURPOSES",
    "SITE_COLUMNS",
    "SITE_KINDS",
    "Fleet",
    "FleetError",
    "ImportReport",
    "RowError",
    "apply",
    "check_text",
    "load_file",
    "opening_hours_problem",
    "parse_text",
]

SITE_KINDS = ("bin", "lot", "space", "line", "vehicle", "stop", "station")
SITE_COLUMNS = (
    "site_id",
    "kind",
    "name",
    "parent_id",
    "lat",
    "lon",
    "waste_type",
    "depth_mm",
    "full_mm",
    "volume_l",
    "threshold_pct",
    "capacity",
    "seq",
    "params",
    # open mobility data (ParkAPI v3, DATEX II, GTFS-Realtime): lots, vehicles, lines
    "lot_type",
    "purpose",
    "park_and_ride",
    "address",
    "opening_hours",
    "has_fee",
    "fee_description",
    "operator_name",
    "public_url",
    "seated_capacity",
    "standing_capacity",
    "gtfs_route_id",
)
#: ParkAPI v3 value lists (as in migration 0006): ParkingSiteType, PurposeType, ParkAndRideType
LOT_TYPES = (
    "ON_STREET",
    "OFF_STREET_PARKING_GROUND",
    "UNDERGROUND",
    "CAR_PARK",
    "WALL_LOOPS",
    "SAFE_WALL_LOOPS",
    "STANDS",
    "LOCKERS",
    "SHED",
    "TWO_TIER",
    "BUILDING",
    "FLOOR",
    "LOCKBOX",
    "OTHER",
)
PURPOSES = ("CAR", "BIKE", "MOTORCYCLE", "ITEM")
PARK_AND_RIDE = ("CARPOOL", "TRAIN", "BUS", "TRAM", "YES", "NO")
DEVICE_COLUMNS = (
    "dev_eui",
    "codec",
    "name",
    "site_id",
    "lns_device_id",
    "lns_application_id",
    "lat",
    "lon",
    "report_interval_s",
    "params",
)
# a network-server application id, optionally with its tenant: "city-sensors", "city-sensors@ttn", a UUID
_APPLICATION = re.compile(r"^[^/#+@\s]+(@[^/#+@\s]+)?$")
_INT = {
    "depth_mm",
    "full_mm",
    "volume_l",
    "capacity",
    "seq",
    "report_interval_s",
    "seated_capacity",
    "standing_capacity",
}
_FLOAT = {"lat", "lon", "threshold_pct"}
_DEV_EUI = re.compile(r"^[0-9a-fA-F]{16}$")
_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
#: C0 and C1 control characters, DEL and the Unicode line/paragraph separators: never part of a name (a CR in a
#: bin's name started a new row with a live formula in a spreadsheet reading the pickup CSV)
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: free-text columns checked for control characters
TEXT_COLUMNS = ("name", "waste_type", "codec", "lns_device_id")


def check_text(value: str) -> str:
    """``value`` unchanged, or ValueError naming the first control character in it."""
    m = CONTROL_CHARS.search(value)
    if m:
        raise ValueError(f"must not contain control characters (U+{ord(m.group()):04X} at position {m.start()})")
    return value


class FleetError(Exception):
    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


@dataclass(frozen=True)
class RowError:
    section: str  # "sites" | "devices" | "codecs"
    row: int  # 1-based position in its section (CSV: the line number)
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"section": self.section, "row": self.row, "field": self.field, "message": self.message}


@dataclass
class Fleet:
    sites: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    codecs: list[dict[str, Any]] = field(default_factory=list)  # {"id", "readings", "_row"}


@dataclass
class ImportReport:
    sites_created: int = 0
    sites_updated: int = 0
    devices_created: int = 0
    devices_updated: int = 0
    unchanged: int = 0
    dry_run: bool = False
    errors: list[RowError] = field(default_factory=list)
    codecs_updated: int = 0
    refused: bool = False  # rows of another tenant: nothing of the file was applied

    def as_dict(self) -> dict[str, Any]:
        return {
            "refused": self.refused,
            "sites_created": self.sites_created,
            "sites_updated": self.sites_updated,
            "devices_created": self.devices_created,
            "devices_updated": self.devices_updated,
            "codecs_updated": self.codecs_updated,
            "unchanged": self.unchanged,
            "dry_run": self.dry_run,
            "errors": [e.as_dict() for e in self.errors],
        }


def _num(value: Any, name: str, kind: type) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number")
    try:
        number = kind(value) if kind is float else int(str(value).strip())
    except (TypeError, ValueError):
        raise ValueError(f"must be {'an integer' if kind is int else 'a number'}") from None
    if kind is float and number != number:
        raise ValueError("must be a number")
    return number


def _words(value: Any) -> list[str] | None:
    """A list of upper-case words from a list or a comma-separated text (CSV)."""
    if value is None or value == "":
        return None
    items = value if isinstance(value, list) else str(value).split(",")
    if not all(isinstance(v, str) for v in items):
        raise ValueError("must be a list of words")
    return [v.strip().upper() for v in items if v.strip()] or None


def _flag(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError("must be true or false")


def _clean(
    raw: dict[str, Any], columns: tuple[str, ...], section: str, row: int, errors: list[RowError]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in columns:
        value = raw.get(name)
        if isinstance(value, str):
            value = value.strip()
        try:
            if name in _INT:
                value = _num(value, name, int)
            elif name in _FLOAT:
                value = _num(value, name, float)
            elif name == "park_and_ride":
                value = _words(value)
            elif name == "has_fee":
                value = _flag(value)
            elif name == "params":
                value = value if isinstance(value, dict) else ({} if value in (None, "") else None)
                if value is None:
                    raise ValueError("must be a mapping")
            elif value == "":
                value = None
            elif value is not None and not isinstance(value, str):
                value = str(value)
            if name in TEXT_COLUMNS and isinstance(value, str):
                check_text(value)
        except ValueError as e:
            errors.append(RowError(section, row, name, str(e)))
            value = None
        out[name] = value
    unknown = set(raw) - set(columns)
    for name in sorted(unknown):
        errors.append(RowError(section, row, name, "unknown column"))
    out["_row"] = row
    return out


def opening_hours_problem(text: str) -> str | None:
    """Why ``text`` is not OpenStreetMap ``opening_hours`` syntax, or None when it is."""
    if len(text) > 512:
        return "must be at most 512 characters"
    try:
        OpeningHours(text)
    except (ParserError, SyntaxError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else "invalid"
        return f"not OpenStreetMap opening_hours syntax ({first})"
    return None


def _check_site(s: dict[str, Any], row: int, errors: list[RowError]) -> None:
    if not s["site_id"] or not _ID.match(s["site_id"]):
        errors.append(RowError("sites", row, "site_id", "required: 1-64 letters, digits, _ . : -"))
    if s["kind"] not in SITE_KINDS:
        errors.append(RowError("sites", row, "kind", f"must be one of {', '.join(SITE_KINDS)}"))
    if s["lat"] is not None and not -90 <= s["lat"] <= 90:
        errors.append(RowError("sites", row, "lat", "must be between -90 and 90"))
    if s["lon"] is not None and not -180 <= s["lon"] <= 180:
        errors.append(RowError("sites", row, "lon", "must be between -180 and 180"))
    if s["threshold_pct"] is not None and not 0 <= s["threshold_pct"] <= 100:
        errors.append(RowError("sites", row, "threshold_pct", "must be between 0 and 100"))
    for name in ("depth_mm", "volume_l"):
        if s[name] is not None and s[name] <= 0:
            errors.append(RowError("sites", row, name, "must be positive"))
    for name in ("full_mm", "capacity"):
        if s[name] is not None and s[name] < 0:
            errors.append(RowError("sites", row, name, "must not be negative"))
    if s["depth_mm"] is not None and s["full_mm"] is not None and s["full_mm"] >= s["depth_mm"]:
        errors.append(RowError("sites", row, "full_mm", "must be less than depth_mm"))
    for name in ("seated_capacity", "standing_capacity"):
        if s[name] is not None and s[name] < 0:
            errors.append(RowError("sites", row, name, "must not be negative"))
    for name, allowed in (("lot_type", LOT_TYPES), ("purpose", PURPOSES)):
        if s[name] is not None:
            s[name] = s[name].upper()
            if s[name] not in allowed:
                errors.append(RowError("sites", row, name, f"must be one of {', '.join(allowed)}"))
    if s["park_and_ride"] and not set(s["park_and_ride"]) <= set(PARK_AND_RIDE):
        errors.append(RowError("sites", row, "park_and_ride", f"must be some of {', '.join(PARK_AND_RIDE)}"))
    if s["public_url"] is not None and not re.match(r"^https?://\S+$", s["public_url"]):
        errors.append(RowError("sites", row, "public_url", "must be an http:// or https:// URL"))
    if s["opening_hours"] is not None and (problem := opening_hours_problem(s["opening_hours"])):
        errors.append(RowError("sites", row, "opening_hours", problem))
    s["name"] = s["name"] or ""


def _check_device(d: dict[str, Any], row: int, errors: list[RowError]) -> None:
    if not d["dev_eui"] or not _DEV_EUI.match(d["dev_eui"]):
        errors.append(RowError("devices", row, "dev_eui", "required: 16 hexadecimal digits"))
    else:
        d["dev_eui"] = d["dev_eui"].lower()
    if not d["codec"]:
        errors.append(RowError("devices", row, "codec", "required"))
    if d["lat"] is not None and not -90 <= d["lat"] <= 90:
        errors.append(RowError("devices", row, "lat", "must be between -90 and 90"))
    if d["lon"] is not None and not -180 <= d["lon"] <= 180:
        errors.append(RowError("devices", row, "lon", "must be between -180 and 180"))
    if d["report_interval_s"] is not None and d["report_interval_s"] <= 0:
        errors.append(RowError("devices", row, "report_interval_s", "must be positive"))
    app = d.get("lns_application_id")
    if app is not None and not _APPLICATION.match(str(app)):
        errors.append(
            RowError("devices", row, "lns_application_id", "an application id, or application@tenant, without / # +")
        )
    d["name"] = d["name"] or ""


_SET_READINGS = """
UPDATE codec_scripts SET readings = %(readings)s WHERE codec_id = %(id)s
  AND version = (SELECT max(version) FROM codec_scripts WHERE codec_id = %(id)s)
"""


def _set_maps(conn: psycopg.Connection, fleet: Fleet, report: ImportReport, dry_run: bool) -> None:
    """The readings maps of the ``codecs`` section, on the current versions of the stored scripts."""
    with conn.transaction(force_rollback=dry_run):
        for c in fleet.codecs:
            cur = conn.execute(_SET_READINGS, {"readings": Jsonb(c["readings"].as_dict()), "id": c["id"]})
            if cur.rowcount:
                report.codecs_updated += 1
            else:
                message = f"no script codec {c['id']!r} is stored (stadtpuls codecs add)"
                report.errors.append(RowError("codecs", c["_row"], "id", message))


def _known_codecs(conn: psycopg.Connection) -> set[str]:
    """Built-in codecs and the script codecs stored in the database."""
    from stadtpuls.ingest.codecs import all_codecs

    stored = {r[0] for r in conn.execute("SELECT DISTINCT codec_id FROM codec_scripts").fetchall()}
    return set(all_codecs()) | stored


def _codec_maps(rows: Any, fleet: Fleet, source: str) -> None:
    """The ``codecs`` section: readings maps of script codecs."""
    from stadtpuls.ingest.codecs import ReadingsMap, ReadingsMapError

    if not isinstance(rows, list):
        raise FleetError(source, "'codecs' must be a list")
    for i, raw in enumerate(rows, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or set(raw) - {"id", "map"}:
            fleet.errors.append(RowError("codecs", i, "", "must be a mapping with 'id' and 'map'"))
            continue
        try:
            readings = ReadingsMap.parse(raw.get("map") or {})
        except ReadingsMapError as e:
            fleet.errors.append(RowError("codecs", i, "map", str(e)))
            continue
        fleet.codecs.append({"id": raw["id"], "readings": readings, "_row": i})


def _from_mapping(doc: Any, source: str) -> Fleet:
    if not isinstance(doc, dict) or not set(doc) <= {"sites", "devices", "codecs"}:
        raise FleetError(source, "expected a mapping with 'sites', 'devices' and/or 'codecs' lists")
    fleet = Fleet()
    _codec_maps(doc.get("codecs") or [], fleet, source)
    for section, columns in (("sites", SITE_COLUMNS), ("devices", DEVICE_COLUMNS)):
        rows = doc.get(section) or []
        if not isinstance(rows, list):
            raise FleetError(source, f"'{section}' must be a list")
        for i, raw in enumerate(rows, start=1):
            if not isinstance(raw, dict):
                fleet.errors.append(RowError(section, i, "", "must be a mapping"))
                continue
            item = _clean(raw, columns, section, i, fleet.errors)
            if section == "sites":
                _check_site(item, i, fleet.errors)
                fleet.sites.append(item)
            else:
                _check_device(item, i, fleet.errors)
                fleet.devices.append(item)
    return fleet


def _from_csv(text: str, source: str) -> Fleet:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "dev_eui" not in reader.fieldnames:
        raise FleetError(source, "CSV needs a header row with at least dev_eui and codec")
    sites: dict[str, dict[str, Any]] = {}
    devices: list[dict[str, Any]] = []
    for raw in reader:
        line = reader.line_num
        device: dict[str, Any] = {"params": {}}
        site: dict[str, Any] = {}
        for key, value in raw.items():
            if key is None:
                continue
            if key.startswith("param_"):
                if value not in (None, ""):
                    device["params"][key[6:]] = _param_value(value)
            elif key.startswith("site_") and key != "site_id":
                site[key[5:]] = value
            else:
                device[key] = value
        if any(v not in (None, "") for v in site.values()):
            site["site_id"] = device.get("site_id")
            site["_line"] = line
            sites.setdefault(str(site["site_id"]), site)
        if device.get("dev_eui"):
            device["_line"] = line
            devices.append(device)
    doc = {"sites": list(sites.values()), "devices": devices}
    fleet = Fleet()
    for s in doc["sites"]:
        line = s.pop("_line")
        item = _clean(s, SITE_COLUMNS, "sites", line, fleet.errors)
        _check_site(item, line, fleet.errors)
        fleet.sites.append(item)
    for d in doc["devices"]:
        line = d.pop("_line")
        item = _clean(d, DEVICE_COLUMNS, "devices", line, fleet.errors)
        _check_device(item, line, fleet.errors)
        fleet.devices.append(item)
    return fleet


def _param_value(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def parse_text(text: str, fmt: str, source: str = "<input>") -> Fleet:
    """Parse a registry document; ``fmt`` is ``yaml`` or ``csv``. Row problems are collected in ``errors``."""
    if fmt in ("yaml", "yml", "json"):
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise FleetError(source, f"not valid YAML: {e}") from None
        return _from_mapping(doc, source)
    if fmt == "csv":
        return _from_csv(text, source)
    raise FleetError(source, f"unknown format {fmt!r} (yaml or csv)")


def load_file(path: str | Path) -> Fleet:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FleetError(str(p), f"cannot read: {e}") from None
    fmt = p.suffix.lower().lstrip(".")
    return parse_text(text, "csv" if fmt == "csv" else "yaml", source=str(p))


def _order_sites(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Parents before children, so foreign keys hold inside one transaction."""
    by_id = {s["site_id"]: s for s in sites}
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []

    def visit(s: dict[str, Any], depth: int = 0) -> None:
        if s["site_id"] in done or depth > 16:
            return
        parent = by_id.get(s["parent_id"] or "")
        if parent is not None and parent is not s:
            visit(parent, depth + 1)
        done.add(s["site_id"])
        ordered.append(s)

    for s in sites:
        visit(s)
    return ordered


# a row of another tenant is never changed (the check before the upsert reports it; this guards a concurrent move)
_SITE_UPSERT = f"""
INSERT INTO sites ({", ".join(SITE_COLUMNS)}, tenant)
VALUES ({", ".join("%s" for _ in SITE_COLUMNS)}, %s)
ON CONFLICT (site_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in SITE_COLUMNS[1:])}, updated_at = now()
WHERE sites.tenant = EXCLUDED.tenant AND ({", ".join(f"sites.{c}" for c in SITE_COLUMNS[1:])})
  IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in SITE_COLUMNS[1:])})
RETURNING (xmax = 0) AS created
"""

_DEVICE_UPSERT = f"""
INSERT INTO devices ({", ".join(DEVICE_COLUMNS)}, tenant)
VALUES ({", ".join("%s" for _ in DEVICE_COLUMNS)}, %s)
ON CONFLICT (dev_eui) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in DEVICE_COLUMNS[1:])},
    updated_at = now()
WHERE devices.tenant = EXCLUDED.tenant AND ({", ".join(f"devices.{c}" for c in DEVICE_COLUMNS[1:])})
  IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in DEVICE_COLUMNS[1:])})
RETURNING (xmax = 0) AS created
"""

_OTHER_SITES = "SELECT site_id, tenant FROM sites WHERE site_id = ANY(%s) AND tenant <> %s"
_OTHER_DEVICES = "SELECT dev_eui, tenant FROM devices WHERE dev_eui = ANY(%s) AND tenant <> %s"


def _foreign_rows(conn: psycopg.Connection, fleet: Fleet, tenant: str) -> list[RowError]:
    """Rows naming a site or device of another tenant, or linking to another tenant's site."""
    site_ids = {s["site_id"] for s in fleet.sites if s["site_id"]}
    linked = {s["parent_id"] for s in fleet.sites if s["parent_id"]} | {
        d["site_id"] for d in fleet.devices if d["site_id"]
    }
    euis = [d["dev_eui"] for d in fleet.devices if d["dev_eui"]]
    other_sites: dict[str, str] = dict(conn.execute(_OTHER_SITES, (sorted(site_ids | linked), tenant)).fetchall())
    other_devices: dict[str, str] = dict(conn.execute(_OTHER_DEVICES, (euis, tenant)).fetchall())
    hint = f"ids are unique across the hub: give this town's ids a prefix such as '{tenant}-'"
    errors: list[RowError] = []
    for s in fleet.sites:
        if s["site_id"] in other_sites:
            owner = other_sites[s["site_id"]]
            message = f"site {s['site_id']!r} belongs to tenant {owner!r}; {hint}"
            errors.append(RowError("sites", s["_row"], "site_id", message))
        elif s["parent_id"] in other_sites and s["parent_id"] not in site_ids:
            owner = other_sites[s["parent_id"]]
            message = f"parent site {s['parent_id']!r} belongs to tenant {owner!r}, not {tenant!r}"
            errors.append(RowError("sites", s["_row"], "parent_id", message))
    for d in fleet.devices:
        if d["dev_eui"] in other_devices:
            owner = other_devices[d["dev_eui"]]
            message = f"device {d['dev_eui']} belongs to tenant {owner!r}; {hint}"
            errors.append(RowError("devices", d["_row"], "dev_eui", message))
        elif d["site_id"] in other_sites and d["site_id"] not in site_ids:
            owner = other_sites[d["site_id"]]
            message = f"site {d['site_id']!r} belongs to tenant {owner!r}, not {tenant!r}"
            errors.append(RowError("devices", d["_row"], "site_id", message))
    return errors


def _values(item: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    from psycopg.types.json import Jsonb

    values = [item.get(c) for c in columns]
    values[columns.index("params")] = Jsonb(item.get("params") or {})
    if "report_interval_s" in columns and values[columns.index("report_interval_s")] is None:
        values[columns.index("report_interval_s")] = 3600
    return values


def apply(
    conn: psycopg.Connection, fleet: Fleet, *, dry_run: bool = False, tenant: str = DEFAULT_TENANT
) -> ImportReport:
    """Upsert every valid row in one transaction (rolled back on ``dry_run``) into ``tenant``; invalid rows are
    reported.

    Rows that fail in the database (a parent site or a site that does not exist, a duplicate ``lns_device_id``)
    are reported per row too; the other rows still go in. A row of another tenant (see the module docstring)
    stops the whole file: nothing is written and every such row is reported.
    """
    if conn.execute("SELECT 1 FROM tenants WHERE slug = %s", (tenant,)).fetchone() is None:
        raise FleetError("--tenant", str(unknown_tenant(tenant)))
    report = ImportReport(dry_run=dry_run, errors=list(fleet.errors))
    foreign = _foreign_rows(conn, fleet, tenant)
    if foreign:
        report.errors.extend(foreign)
        report.refused = True
        return report
    bad = {(e.section, e.row) for e in fleet.errors}
    if fleet.codecs:
        _set_maps(conn, fleet, report, dry_run)
    codecs = _known_codecs(conn)
    for d in fleet.devices:
        if d["codec"] and d["codec"] not in codecs and ("devices", d["_row"]) not in bad:
            report.errors.append(RowError("devices", d["_row"], "codec", f"unknown codec {d['codec']!r}"))
            bad.add(("devices", d["_row"]))
    with conn.transaction(force_rollback=dry_run):
        for section, items, columns, query in (
            ("sites", fleet.sites, SITE_COLUMNS, _SITE_UPSERT),
            ("devices", fleet.devices, DEVICE_COLUMNS, _DEVICE_UPSERT),
        ):
            ordered = _order_sites(items) if section == "sites" else items
            for item in ordered:
                i = int(item["_row"])
                if (section, i) in bad:
                    continue
                try:
                    with conn.transaction():
                        row = conn.execute(query, [*_values(item, columns), tenant]).fetchone()
                except (
                    psycopg.errors.ForeignKeyViolation,
                    psycopg.errors.UniqueViolation,
                    psycopg.errors.CheckViolation,
                ) as e:
                    diag = e.diag.message_detail or e.diag.message_primary or str(e)
                    report.errors.append(RowError(section, i, e.diag.column_name or "", diag))
                    continue
                if row is None:
                    report.unchanged += 1
                elif section == "sites":
                    report.sites_created += int(row[0])
                    report.sites_updated += int(not row[0])
                else:
                    report.devices_created += int(row[0])
                    report.devices_updated += int(not row[0])
    return report
