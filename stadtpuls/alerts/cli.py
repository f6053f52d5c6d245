"""``stadtpuls alerts``: run the evaluator and sender, import rules and channels, list, acknowledge, resend."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

__all__ = ["setup"]


def _connect(args: argparse.Namespace) -> psycopg.Connection:
    import psycopg

    from stadtpuls.commands import database_url
    from stadtpuls.settings import load

    return psycopg.connect(database_url(load()), autocommit=True)


def _run(args: argparse.Namespace) -> int:
    from stadtpuls.commands import database_url
    from stadtpuls.logs import configure_logging
    from stadtpuls.settings import load

    from .service import AlertService

    overrides = {"alerts_interval": args.interval} if args.interval else {}
    settings = load(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    service = AlertService(settings, database_url(settings))
    if args.at:
        import psycopg

        with psycopg.connect(service.url, autocommit=True) as conn:
            report = service.round(conn, datetime.fromisoformat(args.at))
        service.sender.close()
        print(f"opened {sum(report.evaluated.opened.values())}, resolved {sum(report.evaluated.resolved.values())}")
        return 0
    return service.run(once=args.once)


def _import(args: argparse.Namespace) -> int:
    from .kinds import RuleError
    from .store import ChannelError, import_config

    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    try:
        with _connect(args) as conn:
            rules, channels = import_config(conn, text)
    except (RuleError, ChannelError) as e:
        print(f"stadtpuls: {e}", file=sys.stderr)
        return 1
    print(f"imported {rules} rules, {channels} channels")
    return 0


def _rules(args: argparse.Namespace) -> int:
    from .store import LIST_RULES

    with _connect(args) as conn:
        for rule_id, kind, enabled, severity, params, _ in conn.execute(LIST_RULES):
            flag = "" if enabled else " (off)"
            print(f"{rule_id}\t{kind}\t{severity}{flag}\t{params}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from .store import LIST_ALERTS

    params = {"state": args.state, "rule_id": args.rule, "severity": None, "site_id": None, "since": None}
    with _connect(args) as conn:
        for row in conn.execute(LIST_ALERTS, {**params, "limit": args.limit}):
            alert_id, rule_id, subject, _, _, severity, state, _, message, opened_at = row[:10]
            print(f"{alert_id}\t{state}\t{severity}\t{rule_id}\t{subject}\t{opened_at:%Y-%m-%d %H:%M}\t{message}")
    return 0


def _ack(args: argparse.Namespace) -> int:
    from .store import acknowledge

    with _connect(args) as conn:
        ok = acknowledge(conn, args.alert_id, actor=args.by, note=args.note, now=datetime.now(UTC))
    if not ok:
        print(f"stadtpuls: alert {args.alert_id} is not open", file=sys.stderr)
        return 1
    return 0


def _notifications(args: argparse.Namespace) -> int:
    from .store import LIST_NOTIFICATIONS

    with _connect(args) as conn:
        for row in conn.execute(LIST_NOTIFICATIONS, {"status": args.status, "limit": args.limit}):
            nid, channel, status, attempts, _, error, _, alert_id, change, _, digest_day = row
            what = f"digest {digest_day}" if digest_day else f"alert {alert_id} {change}"
            print(f"{nid}\t{status}\t{channel}\t{what}\t{attempts} attempts\t{error or ''}")
    return 0


def _resend(args: argparse.Namespace) -> int:
    from .store import RESEND

    with _connect(args) as conn:
        row = conn.execute(RESEND, {"notification_id": args.notification_id}).fetchone()
    if row is None:
        print(f"stadtpuls: notification {args.notification_id} does not exist or was sent", file=sys.stderr)
        return 1
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from datetime import timedelta

    with _connect(args) as conn:
        newest = conn.execute("SELECT (max(last_time) AT TIME ZONE 'UTC')::date FROM device_state").fetchone()
        last = newest[0] if newest and newest[0] else datetime.now(UTC).date()
        row = conn.execute("SELECT device_daily_build(%s, %s)", (last - timedelta(days=args.days - 1), last)).fetchone()
    print(f"summarised {row[0] if row else 0} device-days")
    return 0


def setup(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="alerts_command", metavar="ACTION")
    p.set_defaults(func=_run, interval=None, once=False, at=None)

    run = sub.add_parser("run", help="evaluate the rules and send notifications every interval (the default)")
    run.add_argument("--interval", type=float, help="seconds between rounds (overrides STADTPULS_ALERTS_INTERVAL)")
    run.add_argument("--once", action="store_true", help="one round, then exit")
    run.add_argument("--at", help="one round evaluated at this ISO time (replaying history), then exit")
    run.set_defaults(func=_run)

    imp = sub.add_parser("import", help="add or replace rules and channels from a YAML file (- = stdin)")
    imp.add_argument("file")
    imp.set_defaults(func=_import)

    sub.add_parser("rules", help="list the rules").set_defaults(func=_rules)

    ls = sub.add_parser("list", help="list alerts, active first")
    ls.add_argument("--state", choices=("open", "acknowledged", "resolved"))
    ls.add_argument("--rule")
    ls.add_argument("--limit", type=int, default=100)
    ls.set_defaults(func=_list)

    ack = sub.add_parser("ack", help="acknowledge an open alert")
    ack.add_argument("alert_id", type=int)
    ack.add_argument("--note", default="")
    ack.add_argument("--by", default="cli", help="who acknowledges (default: cli)")
    ack.set_defaults(func=_ack)

    ns = sub.add_parser("notifications", help="list notifications (e.g. --status dead)")
    ns.add_argument("--status", choices=("pending", "sent", "dead"))
    ns.add_argument("--limit", type=int, default=100)
    ns.set_defaults(func=_notifications)

    sm = sub.add_parser("summarize", help="rebuild the devices' day summaries of the last days (after a backfill)")
    sm.add_argument("--days", type=int, default=15, help="days back from the newest reading (default 15)")
    sm.set_defaults(func=_summarize)

    rs = sub.add_parser("resend", help="send a dead notification again")
    rs.add_argument("notification_id", type=int)
    rs.set_defaults(func=_resend)
