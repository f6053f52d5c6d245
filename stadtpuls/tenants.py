"""Tenants: the municipalities one hub serves (table ``tenants``, migration 0014), and ``stadtpuls tenants``.

A tenant's per-town fields (time zone, depots, service days, pickup start hour) are null where the town takes the
hub's setting; :func:`effective` gives the values a town actually runs on, :func:`town_settings` the hub's settings
with them. Values are checked here as the migration's CHECKs do, so a bad one gets a message naming the field
instead of a database error. The table's statements are built here once, for this module's connection and for the
API's asynchronous one.

Command line: ``stadtpuls tenants add SLUG --name ...``, ``stadtpuls tenants update SLUG ...`` (an empty value
clears a field: the town takes the hub's setting again), ``stadtpuls tenants list [--json]``. Exit code 2 and a
one-line message for a bad value, a duplicate or an unknown slug.

Exceptions::

    TenantError             (attributes: slug)
     +-- InvalidTenantValue (attributes: slug, field)
     +-- DuplicateTenant
     +-- UnknownTenant
"""

from __future__ import annotations

import argparse
import re
import sys
import zoneinfo
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .schema import assignments, insert_row
from .settings import Settings
from .tenant_roles import setup_grafana_role

__all__ = [
    "COLOUR_PATTERN",
    "COLUMNS",
    "FIELDS",
    "LOGO_URL_PATTERN",
    "SLUG_PATTERN",
    "SLUG_TEXT",
    "Depot",
    "DuplicateTenant",
    "Effective",
    "InvalidTenantValue",
    "Tenant",
    "TenantError",
    "TenantRecord",
    "UnknownTenant",
    "add",
    "check_fields",
    "effective",
    "from_row",
    "get",
    "insert_statement",
    "list_tenants",
    "parse_depot",
    "require",
    "setup",
    "town_settings",
    "unknown_tenant",
    "update",
    "update_statement",
]

#: the migration's CHECKs of a slug, a colour and a logo URL, for the API's models and the prefix of a town's paths
SLUG_TEXT = r"[a-z0-9][a-z0-9-]{0,39}"
SLUG_PATTERN = rf"^{SLUG_TEXT}$"
COLOUR_PATTERN = r"^#[0-9a-fA-F]{6}$"
LOGO_URL_PATTERN = r"""^(https://|/)[^\s"'<>]*$"""
SLUG = re.compile(SLUG_PATTERN)
_COLOUR = re.compile(COLOUR_PATTERN)
_LOGO_URL = re.compile(LOGO_URL_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: the settable columns of ``tenants`` (slug is the key; db_role belongs to the database roles' migration)
FIELDS = ("name", "timezone", "depots", "service_days", "pickup_start_hour", "brand_name", "logo_url", "colour")


class TenantError(Exception):
    def __init__(self, slug: str, message: str) -> None:
        super().__init__(message)
        self.slug = slug


class InvalidTenantValue(TenantError):
    def __init__(self, slug: str, field: str, message: str) -> None:
        super().__init__(slug, f"{field}: {message}")
        self.field = field


class DuplicateTenant(TenantError):
    pass


class UnknownTenant(TenantError):
    pass


def unknown_tenant(slug: str) -> UnknownTenant:
    """UnknownTenant for ``slug``, its message saying how to add the town."""
    return UnknownTenant(slug, f"no tenant {slug!r} (stadtpuls tenants add {slug} --name ...)")


@dataclass(frozen=True)
class Depot:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Tenant:
    """A town's row: its own values, null where it takes the hub's setting."""

    slug: str
    name: str
    timezone: str | None = None
    depots: list[Depot] | None = None
    service_days: list[int] | None = None
    pickup_start_hour: float | None = None
    brand_name: str | None = None
    logo_url: str | None = None
    colour: str | None = None

    @property
    def title(self) -> str:
        """What the town's public pages are called."""
        return self.brand_name or self.name


@dataclass(frozen=True)
class TenantRecord(Tenant):
    """A town as the command line lists it: with how many sites and devices it has."""

    sites: int = 0
    devices: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Effective:
    """What a town runs on: its own values, or the hub's settings where it has none."""

    timezone: str
    depots: list[Depot]
    service_days: list[int]
    pickup_start_hour: float


def effective(tenant: Tenant, settings: Settings) -> Effective:
    return Effective(
        timezone=tenant.timezone or settings.timezone,
        depots=tenant.depots or [Depot("depot", settings.depot_lat, settings.depot_lon)],
        service_days=sorted(set(tenant.service_days)) if tenant.service_days else list(settings.service_days),
        pickup_start_hour=settings.pickup_start_hour if tenant.pickup_start_hour is None else tenant.pickup_start_hour,
    )


def town_settings(settings: Settings, tenant: Tenant | None) -> Settings:
    """The hub's settings with a town's :func:`effective` time zone, depot (its first), service days and round start
    hour; the hub's own settings for no town (``None``)."""
    if tenant is None:
        return settings
    town = effective(tenant, settings)
    change = {
        "timezone": town.timezone,
        "depot_lat": town.depots[0].lat,
        "depot_lon": town.depots[0].lon,
        "service_days": town.service_days,
        "pickup_start_hour": town.pickup_start_hour,
    }
    return settings.model_copy(update=change)


def parse_depot(text: str) -> Depot:
    """``NAME:LAT,LON`` -> a depot; ValueError says what is wrong."""
    name, sep, where = text.rpartition(":")
    lat_text, comma, lon_text = where.partition(",")
    if not sep or not comma or not name.strip():
        raise ValueError(f"{text!r} is not NAME:LAT,LON")
    try:
        return _depot({"name": name.strip(), "lat": float(lat_text), "lon": float(lon_text)})
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not NAME:LAT,LON (latitude -90..90, longitude -180..180)") from None


def _depot(item: Mapping[str, Any]) -> Depot:
    name, lat, lon = item.get("name"), item.get("lat"), item.get("lon")
    if not isinstance(name, str) or not name or _CONTROL.search(name):
        raise ValueError("a depot needs a name without control characters")
    if (
        isinstance(lat, bool)
        or isinstance(lon, bool)
        or not isinstance(lat, int | float)
        or not isinstance(lon, int | float)
    ):
        raise ValueError("a depot's lat and lon must be numbers")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("a depot's lat must be -90..90 and lon -180..180")
    return Depot(name, float(lat), float(lon))


def check_fields(slug: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The values cleaned (service days sorted, depots as :class:`Depot`), or InvalidTenantValue for the first bad
    one. ``None`` clears a field (the hub's setting); ``name`` cannot be cleared."""
    if not SLUG.match(slug):
        raise InvalidTenantValue(slug, "slug", f"{slug!r}: 1-40 lower-case letters, digits and -, not starting with -")
    out: dict[str, Any] = {}
    for field, value in fields.items():
        if field not in FIELDS:
            raise InvalidTenantValue(slug, field, "not a tenant field")
        out[field] = value if value is None else _check(slug, field, value)
    if "name" in out and out["name"] is None:
        raise InvalidTenantValue(slug, "name", "required")
    return out


def _check(slug: str, field: str, value: Any) -> Any:
    def bad(message: str) -> InvalidTenantValue:
        return InvalidTenantValue(slug, field, message)

    if field in ("name", "brand_name"):
        if not isinstance(value, str) or not value.strip() or _CONTROL.search(value):
            raise bad("must be text without control characters")
        return value.strip()
    if field == "timezone":
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise bad(f"unknown time zone {value!r} (an IANA name such as Europe/Berlin)") from None
        return value
    if field == "colour":
        if not isinstance(value, str) or not _COLOUR.match(value):
            raise bad(f"{value!r} is not a colour like #1a6b3c")
        return value.lower()
    if field == "logo_url":
        if not isinstance(value, str) or not _LOGO_URL.match(value):
            raise bad(f"{value!r} is not an https:// URL or a path starting with /")
        return value
    if field == "service_days":
        if not value or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in value):
            raise bad("weekdays 0 (Monday) .. 6 (Sunday), at least one")
        return sorted(set(value))
    if field == "pickup_start_hour":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 24:
            raise bad("an hour from 0 to below 24 (6.5 = 06:30)")
        return float(value)
    # depots
    if not isinstance(value, list) or not value:
        raise bad("a list of depots {name, lat, lon}, at least one")
    try:
        return [v if isinstance(v, Depot) else _depot(v) for v in value]
    except (ValueError, AttributeError) as e:
        raise bad(str(e)) from None


# --- the table ----------------------------------------------------------------------------------------------
# One statement of each kind, executed here on a connection and by the API's queries on an asynchronous one.

#: the columns a :class:`Tenant` is read from, in its order
COLUMNS = ("slug", *FIELDS)

_SELECT = sql.SQL("""
SELECT {},
       (SELECT count(*) FROM sites s WHERE s.tenant = t.slug)::int AS sites,
       (SELECT count(*) FROM devices d WHERE d.tenant = t.slug)::int AS devices
FROM tenants t WHERE %(slug)s::text IS NULL OR t.slug = %(slug)s ORDER BY t.slug
""").format(sql.SQL(", ").join(sql.Identifier("t", c) for c in COLUMNS))


def _db_value(field: str, value: Any) -> Any:
    if field == "depots" and value is not None:
        return Jsonb([asdict(d) if isinstance(d, Depot) else d for d in value])
    return value


def _db_values(values: Mapping[str, Any]) -> dict[str, Any]:
    return {f: _db_value(f, v) for f, v in values.items()}


def insert_statement(slug: str, values: Mapping[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    """The INSERT of town ``slug`` with ``values`` (checked: :func:`check_fields`, or the API's models; depots as
    :class:`Depot` or ``{name, lat, lon}``) and its parameters."""
    return insert_row("tenants", {"slug": slug, **_db_values(values)})


def update_statement(slug: str, values: Mapping[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    """The UPDATE of town ``slug``'s ``values`` (checked as for :func:`insert_statement`; none: only its
    ``updated_at``) and its parameters."""
    query = sql.SQL("UPDATE tenants SET {} WHERE slug = %(_slug)s").format(assignments(values))
    return query, {**_db_values(values), "_slug": slug}


def _row_values(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    depots = out["depots"]
    out["depots"] = None if depots is None else [Depot(d["name"], float(d["lat"]), float(d["lon"])) for d in depots]
    if out["service_days"] is not None:
        out["service_days"] = list(out["service_days"])
    return out


def from_row(row: Mapping[str, Any]) -> Tenant:
    """A town from its row's :data:`COLUMNS` (a ``dict_row``)."""
    return Tenant(**_row_values(row))


def list_tenants(conn: psycopg.Connection) -> list[TenantRecord]:
    cur = conn.cursor(row_factory=dict_row)
    return [TenantRecord(**_row_values(r)) for r in cur.execute(_SELECT, {"slug": None}).fetchall()]


def get(conn: psycopg.Connection, slug: str) -> TenantRecord | None:
    row = conn.cursor(row_factory=dict_row).execute(_SELECT, {"slug": slug}).fetchone()
    return None if row is None else TenantRecord(**_row_values(row))


def require(conn: psycopg.Connection, slug: str) -> TenantRecord:
    """The tenant, or UnknownTenant with a message saying how to add it."""
    found = get(conn, slug)
    if found is None:
        raise unknown_tenant(slug)
    return found


def add(conn: psycopg.Connection, slug: str, fields: Mapping[str, Any]) -> TenantRecord:
    values = check_fields(slug, fields)
    if not values.get("name"):
        raise InvalidTenantValue(slug, "name", "required")
    try:
        with conn.transaction():
            conn.execute(*insert_statement(slug, values))
    except psycopg.errors.UniqueViolation:
        raise DuplicateTenant(slug, f"tenant {slug!r} exists already (stadtpuls tenants update {slug} ...)") from None
    return require(conn, slug)


def update(conn: psycopg.Connection, slug: str, fields: Mapping[str, Any]) -> TenantRecord:
    values = check_fields(slug, fields)
    if values:
        with conn.transaction():
            cur = conn.execute(*update_statement(slug, values))
        if cur.rowcount == 0:
            raise unknown_tenant(slug)
    return require(conn, slug)


# --- command line -----------------------------------------------------------------------------------------------


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line; an empty text clears a field (the hub's setting)."""
    out: dict[str, Any] = {}
    for field in ("name", "timezone", "brand_name", "logo_url", "colour"):
        value = getattr(args, field)
        if value is not None:
            out[field] = value or None
    if args.depot is not None:
        out["depots"] = [parse_depot(d) for d in args.depot if d] or None
    if args.service_days is not None:
        text = args.service_days.strip()
        try:
            out["service_days"] = [int(d) for d in text.split(",")] if text else None
        except ValueError:
            raise ValueError(f"service days: {args.service_days!r} is not a list like 0,2,4") from None
    if args.pickup_start_hour is not None:
        text = args.pickup_start_hour.strip()
        try:
            out["pickup_start_hour"] = float(text) if text else None
        except ValueError:
            raise ValueError(f"pickup start hour: {args.pickup_start_hour!r} is not a number") from None
    return out


def _line(t: TenantRecord) -> str:
    days = ",".join(map(str, t.service_days)) if t.service_days else "-"
    hour = "-" if t.pickup_start_hour is None else f"{t.pickup_start_hour:g}"
    depots = ";".join(f"{d.name}:{d.lat:g},{d.lon:g}" for d in t.depots or []) or "-"
    return (
        f"{t.slug:<16}{t.sites:>6}{t.devices:>8}  {t.timezone or '-':<18}{days:<14}{hour:<6}{t.colour or '-':<9}"
        f"{t.name}" + (f" ({t.brand_name})" if t.brand_name else "") + f"  depots {depots}"
    )


def _run(args: argparse.Namespace) -> int:
    from .commands import database_url
    from .settings import load

    url = args.database_url or database_url(load())
    try:
        fields = _fields(args) if args.action in ("add", "update") else {}
        with psycopg.connect(url) as conn:
            if args.action == "list":
                tenants = list_tenants(conn)
                if args.json:
                    sys.stdout.write(orjson.dumps([t.as_dict() for t in tenants]).decode() + "\n")
                    return 0
                sys.stdout.write(
                    f"{'SLUG':<16}{'SITES':>6}{'DEVICES':>8}  {'TIMEZONE':<18}{'SERVICE DAYS':<14}{'START':<6}"
                    f"{'COLOUR':<9}NAME\n"
                )
                sys.stdout.write("".join(_line(t) + "\n" for t in tenants))
                return 0
            tenant = add(conn, args.slug, fields) if args.action == "add" else update(conn, args.slug, fields)
    except (TenantError, ValueError) as e:
        sys.stderr.write(f"stadtpuls tenants: {e}\n")
        return 2
    except psycopg.OperationalError as e:
        sys.stderr.write(f"stadtpuls: cannot connect to the database: {e}\n")
        return 1
    sys.stdout.write(f"{'added' if args.action == 'add' else 'updated'} tenant {tenant.slug}\n{_line(tenant)}\n")
    return 0


def _options(p: argparse.ArgumentParser, *, adding: bool) -> None:
    p.add_argument("slug", help="the town's short name in URLs: /t/SLUG/... (lower-case letters, digits, -)")
    p.add_argument("--name", required=adding, help="the town's name")
    clear = "" if adding else "; '' takes the hub's setting again"
    p.add_argument("--timezone", help=f"IANA time zone (default: STADTPULS_TIMEZONE{clear})")
    p.add_argument(
        "--depot",
        action="append",
        metavar="NAME:LAT,LON",
        help=f"a waste depot, repeatable (default: STADTPULS_DEPOT_LAT/LON{clear})",
    )
    p.add_argument("--service-days", metavar="0,2,4", help=f"collection weekdays, 0 = Monday{clear}")
    p.add_argument("--pickup-start-hour", metavar="HOUR", help=f"local hour rounds start, 6.5 = 06:30{clear}")
    p.add_argument("--brand-name", help="title of the town's public pages (default: its name)")
    p.add_argument("--logo-url", help="logo of the town's pages: https://... or /path")
    p.add_argument("--colour", help="accent colour of the town's pages, #rrggbb")


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _options(sub.add_parser("add", help="add a town"), adding=True)
    _options(sub.add_parser("update", help="change a town's fields"), adding=False)
    ls = sub.add_parser("list", help="list the towns with their sites and devices")
    ls.add_argument("--json", action="store_true", help="print JSON")
    setup_grafana_role(sub.add_parser("grafana-role", help="create or update the town's Grafana database role"))
    p.set_defaults(func=_run)
