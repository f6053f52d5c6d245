"""``stadtpuls devices import FILE [--dry-run] [--tenant SLUG]`` and ``stadtpuls devices list [--tenant SLUG]``: the
device registry on the command line.

``import`` reads a YAML or CSV registry file (:mod:`stadtpuls.fleet`), upserts its sites and devices in one
transaction (rolled back with ``--dry-run``) into one tenant (``--tenant``, default ``default``) and prints what
changed and every row error (section, row, field, message). The exit code is 0 when every row went in, 1 when some
rows were rejected (or the file names another tenant's sites or devices: then nothing is written), 2 when the file
cannot be read at all or the tenant does not exist. A running ``stadtpuls ingest`` picks the devices up at its next
registry refresh.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson
import psycopg

from stadtpuls.fleet import FleetError, apply, load_file
from stadtpuls.schema import DEFAULT_TENANT
from stadtpuls.settings import load

__all__ = ["import_file", "list_devices", "setup"]

_LIST = """
SELECT d.dev_eui, d.tenant, d.codec, d.name, d.site_id, s.kind, d.lns_device_id, d.report_interval_s,
       ds.last_f_cnt, ds.last_time
FROM devices d LEFT JOIN sites s ON s.site_id = d.site_id LEFT JOIN device_state ds ON ds.dev_eui = d.dev_eui
WHERE %(tenant)s::text IS NULL OR d.tenant = %(tenant)s
ORDER BY d.dev_eui
"""


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    settings = load()
    if settings.database_url is None:
        sys.stderr.write("stadtpuls: STADTPULS_DATABASE_URL is not set\n")
        raise SystemExit(2)
    return settings.database_url.get_secret_value()


def import_file(url: str, path: str, *, dry_run: bool = False, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
    """Import a registry file into ``tenant`` of the database at ``url``; returns the report as a dict."""
    fleet = load_file(path)
    with psycopg.connect(url) as conn:
        report = apply(conn, fleet, dry_run=dry_run, tenant=tenant)
    return report.as_dict()


def list_devices(url: str, tenant: str | None = None) -> list[dict[str, Any]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(_LIST, {"tenant": tenant})
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _import(args: argparse.Namespace) -> int:
    url = _url(args)
    try:
        report = import_file(url, args.file, dry_run=args.dry_run, tenant=args.tenant)
    except FleetError as e:
        sys.stderr.write(f"stadtpuls: {e}\n")
        return 2
    except psycopg.OperationalError as e:
        sys.stderr.write(f"stadtpuls: cannot connect to the database: {e}\n")
        return 2
    if args.json:
        _out(orjson.dumps(report).decode())
    else:
        prefix = "dry run, nothing written: " if report["dry_run"] else ""
        if report["refused"]:
            prefix = f"refused, nothing written (rows of other tenants than {args.tenant!r}): "
        _out(
            f"{prefix}sites created {report['sites_created']}, updated {report['sites_updated']}; "
            f"devices created {report['devices_created']}, updated {report['devices_updated']}; "
            f"unchanged {report['unchanged']}; errors {len(report['errors'])}"
            + (f"; codec readings maps set {report['codecs_updated']}" if report["codecs_updated"] else "")
        )
        for err in report["errors"]:
            _out(f"  {err['section']} row {err['row']}: {err['field'] or '-'}: {err['message']}")
    return 1 if report["errors"] else 0


def _list(args: argparse.Namespace) -> int:
    rows = list_devices(_url(args), args.tenant)
    if args.json:
        _out(orjson.dumps(rows, default=str).decode())
        return 0
    _out(f"{'dev_eui':16}  {'tenant':14} {'codec':34} {'site':20} {'kind':8} {'last f_cnt':>10}  last uplink")
    for r in rows:
        last = r["last_time"].isoformat(timespec="seconds") if r["last_time"] else "-"
        f_cnt = "-" if r["last_f_cnt"] is None else str(r["last_f_cnt"])
        site, kind = r["site_id"] or "-", r["kind"] or "-"
        _out(f"{r['dev_eui']:16}  {r['tenant']:14} {r['codec']:34} {site:20} {kind:8} {f_cnt:>10}  {last}")
    _out(f"{len(rows)} devices")
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import sites and devices from a YAML or CSV registry file")
    imp.add_argument("file", help="registry file (.yaml, .yml or .csv)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.add_argument(
        "--tenant", default=DEFAULT_TENANT, metavar="SLUG", help="the town every site and device of the file goes to"
    )
    imp.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
    imp.set_defaults(func=_import)
    ls = sub.add_parser("list", help="list registered devices with their site and last frame counter")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.add_argument("--tenant", metavar="SLUG", help="only this town's devices (default: every town)")
    ls.add_argument("--database-url", help="overrides STADTPULS_DATABASE_URL")
    ls.set_defaults(func=_list)
