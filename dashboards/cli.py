"""``stadtpuls dashboards build [--out DIR] [--check]``: write (or check) the Grafana provisioning files.
``stadtpuls dashboards towns --out DIR --org SLUG=ORG_ID ...``: each town's datasource and dashboards in its own
Grafana organisation (see ``towns.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["setup"]


def _run(args: argparse.Namespace) -> int:
    from stadtpuls.settings import load

    from .build import PROVISIONING, BuildOptions, build, stale, write

    settings = load(**({"timezone": args.timezone} if args.timezone else {}))
    options = BuildOptions.from_settings(settings, timescaledb=not args.no_timescaledb)
    out = Path(args.out) if args.out else PROVISIONING
    files = build(options)
    if args.check:
        wrong = stale(out, files)
        for rel in wrong:
            print(f"stale: {out / rel}", file=sys.stderr)
        if wrong:
            print("run `stadtpuls dashboards build` and commit the result", file=sys.stderr)
            return 1
        print(f"up to date: {len(files)} files in {out}")
        return 0
    touched = write(out, files)
    for rel in touched:
        print(f"wrote {out / rel}" if rel in files else f"removed {out / rel}")
    print(f"{len(files)} files in {out} ({len(touched)} changed)")
    return 0


def _org(text: str) -> tuple[str, int]:
    slug, sep, org = text.partition("=")
    if not sep or not slug or not org.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not SLUG=ORG_ID (an organisation id is a number)")
    return slug, int(org)


def _towns(args: argparse.Namespace) -> int:
    import psycopg

    from stadtpuls.commands import database_url
    from stadtpuls.settings import load

    from .build import BuildOptions
    from .towns import TownsError, load_towns, password_variable, town_files, write_towns

    settings = load(**({"timezone": args.timezone} if args.timezone else {}))
    org_ids: dict[str, int] = {}
    for slug, org in args.org:
        if org_ids.setdefault(slug, org) != org:
            print(f"stadtpuls: {slug} is given two organisations", file=sys.stderr)
            return 2
    try:
        with psycopg.connect(args.database_url or database_url(settings)) as conn:
            towns, without = load_towns(conn, org_ids)
    except TownsError as e:
        print(f"stadtpuls: {e}", file=sys.stderr)
        return 2
    options = BuildOptions.from_settings(settings, timescaledb=not args.no_timescaledb)
    out = Path(args.out)
    files = town_files(towns, options)
    touched = write_towns(out, files)
    for rel in touched:
        print(f"wrote {out / rel}" if rel in files else f"removed {out / rel}")
    for town in towns:
        print(f"{town.slug}: org {town.org_id} as {town.db_role}, password in ${password_variable(town.slug)}")
    for slug in without:
        print(f"{slug}: no reader role yet (stadtpuls tenants grafana-role {slug})", file=sys.stderr)
    print(f"{len(towns)} towns in {out} ({len(touched)} files changed); restart Grafana to load them")
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser(
        "build",
        help="write the datasource, provider and dashboard files",
        description="Write Grafana provisioning files (datasource, provider, dashboards).",
    )
    b.add_argument("--out", metavar="DIR", help="output directory (default: the package's provisioning/)")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 when the files differ from a build")
    b.add_argument("--timezone", help="reporting time zone of the dashboards (default: STADTPULS_TIMEZONE)")
    b.add_argument(
        "--no-timescaledb",
        action="store_true",
        help="datasource for plain PostgreSQL ($__timeGroup without time_bucket)",
    )
    b.set_defaults(func=_run)
    t = sub.add_parser(
        "towns",
        help="write each town's datasource and dashboard provider (one Grafana organisation per town)",
        description="Write a datasource (the town's reader role) and a dashboard provider per town with a reader "
        "role into its Grafana organisation. Create the organisations first (POST /api/orgs) and name their ids.",
    )
    t.add_argument("--out", metavar="DIR", required=True, help="Grafana's provisioning directory")
    t.add_argument(
        "--org",
        metavar="SLUG=ORG_ID",
        type=_org,
        action="append",
        default=[],
        help="the Grafana organisation of a town (repeat for every town with a reader role)",
    )
    t.add_argument("--database-url", help="database URL (default: STADTPULS_DATABASE_URL)")
    t.add_argument("--timezone", help="reporting time zone of the dashboards (default: STADTPULS_TIMEZONE)")
    t.add_argument("--no-timescaledb", action="store_true", help="datasource for plain PostgreSQL")
    t.set_defaults(func=_towns)
