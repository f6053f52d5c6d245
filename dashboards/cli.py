"""``stadtpuls dashboards build [--out DIR] [--check]``: write (or check) the Grafana provisioning files."""

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
