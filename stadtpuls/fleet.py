"""The device registry file: sites and devices as YAML or CSV, validated row by row and upserted idempotently.

YAML: ``{"sites": [site, ...], "devices": [device, ...]}``. CSV: one row per device (columns of :data:`DEVICE_COLUMNS`),
optionally with the device's site in ``site_*`` columns and device parameters in ``param_*`` columns; a row with an
empty ``dev_eui`` declares only its site (a lot, a line).

Exceptions::

    FleetError          the file cannot be read at all (attributes: source)
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

__all__ = [
    "CONTROL_CHARS",
    "DEVICE_COLUMNS",
    "SITE_COLUMNS",
    "SITE_KINDS",
    "Fleet",
    "FleetError",
    "ImportReport",
    "RowError",
    "apply",
    "check_text",
    "load_file",
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
)
DEVICE_COLUMNS = ("dev_eui", "codec", "name", "site_id", "lns_device_id", "lat", "lon", "report_interval_s", "params")
_INT = {"depth_mm", "full_mm", "volume_l", "capacity", "seq", "report_interval_s"}
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
    section: str  # "sites" | "devices"
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


@dataclass
class ImportReport:
    sites_created: int = 0
    sites_updated: int = 0
    devices_created: int = 0
    devices_updated: int = 0
    unchanged: int = 0
    dry_run: bool = False
    errors: list[RowError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sites_created": self.sites_created,
            "sites_updated": self.sites_updated,
            "devices_created": self.devices_created,
            "devices_updated": self.devices_updated,
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


def _clean(raw: dict[str, Any], columns: tuple[str, ...], section: str, row: int, errors: list[RowError]) -> dict:
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
    s["name"] = s["name"] or ""


def _check_device(d: dict[str, Any], row: int, errors: list[RowError], codecs: set[str] | None) -> None:
    if not d["dev_eui"] or not _DEV_EUI.match(d["dev_eui"]):
        errors.append(RowError("devices", row, "dev_eui", "required: 16 hexadecimal digits"))
    else:
        d["dev_eui"] = d["dev_eui"].lower()
    if not d["codec"]:
        errors.append(RowError("devices", row, "codec", "required"))
    elif codecs is not None and d["codec"] not in codecs:
        errors.append(RowError("devices", row, "codec", f"unknown codec {d['codec']!r}"))
    if d["lat"] is not None and not -90 <= d["lat"] <= 90:
        errors.append(RowError("devices", row, "lat", "must be between -90 and 90"))
    if d["lon"] is not None and not -180 <= d["lon"] <= 180:
        errors.append(RowError("devices", row, "lon", "must be between -180 and 180"))
    if d["report_interval_s"] is not None and d["report_interval_s"] <= 0:
        errors.append(RowError("devices", row, "report_interval_s", "must be positive"))
    d["name"] = d["name"] or ""


def _known_codecs() -> set[str] | None:
    try:
        from stadtpuls.ingest.codecs import all_codecs
    except ImportError:  # pragma: no cover - the ingest package ships with the hub
        return None
    return set(all_codecs())


def _from_mapping(doc: Any, source: str) -> Fleet:
    if not isinstance(doc, dict) or not set(doc) <= {"sites", "devices"}:
        raise FleetError(source, "expected a mapping with 'sites' and/or 'devices' lists")
    fleet = Fleet()
    codecs = _known_codecs()
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
                _check_device(item, i, fleet.errors, codecs)
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
    codecs = _known_codecs()
    for s in doc["sites"]:
        line = s.pop("_line")
        item = _clean(s, SITE_COLUMNS, "sites", line, fleet.errors)
        _check_site(item, line, fleet.errors)
        fleet.sites.append(item)
    for d in doc["devices"]:
        line = d.pop("_line")
        item = _clean(d, DEVICE_COLUMNS, "devices", line, fleet.errors)
        _check_device(item, line, fleet.errors, codecs)
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


_SITE_UPSERT = f"""
INSERT INTO sites ({", ".join(SITE_COLUMNS)})
VALUES ({", ".join("%s" for _ in SITE_COLUMNS)})
ON CONFLICT (site_id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in SITE_COLUMNS[1:])}, updated_at = now()
WHERE ({", ".join(f"sites.{c}" for c in SITE_COLUMNS[1:])})
  IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in SITE_COLUMNS[1:])})
RETURNING (xmax = 0) AS created
"""

_DEVICE_UPSERT = f"""
INSERT INTO devices ({", ".join(DEVICE_COLUMNS)})
VALUES ({", ".join("%s" for _ in DEVICE_COLUMNS)})
ON CONFLICT (dev_eui) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in DEVICE_COLUMNS[1:])},
    updated_at = now()
WHERE ({", ".join(f"devices.{c}" for c in DEVICE_COLUMNS[1:])})
  IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in DEVICE_COLUMNS[1:])})
RETURNING (xmax = 0) AS created
"""


def _values(item: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    from psycopg.types.json import Jsonb

    values = [item.get(c) for c in columns]
    values[columns.index("params")] = Jsonb(item.get("params") or {})
    if "report_interval_s" in columns and values[columns.index("report_interval_s")] is None:
        values[columns.index("report_interval_s")] = 3600
    return values


def apply(conn: psycopg.Connection, fleet: Fleet, *, dry_run: bool = False) -> ImportReport:
    """Upsert every valid row in one transaction (rolled back on ``dry_run``); invalid rows are reported.

    Rows that fail in the database (a parent site or a site that does not exist, a duplicate ``lns_device_id``)
    are reported per row too; the other rows still go in.
    """
    report = ImportReport(dry_run=dry_run, errors=list(fleet.errors))
    bad = {(e.section, e.row) for e in fleet.errors}
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
                        row = conn.execute(query, _values(item, columns)).fetchone()
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
