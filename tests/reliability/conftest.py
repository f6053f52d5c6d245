"""Fixtures of the reliability suite: a live API process on a seeded database, in-process API clients (from the API
tests' helpers), and the ingest tests' helpers (registry import, waiting, in-process ingest services)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from stadtpuls.demo.embedded import free_port
from stadtpuls.schema import RESET_TENANTS

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
sys.path.insert(0, str(TESTS / "api"))  # the API tests' helper module (tests are not a package)
sys.path.insert(0, str(Path(__file__).parent))
from apitest import ADMIN_KEY, OPERATOR_KEY, ApiClient, Seeder, fixed_now, hours_ago, make_settings  # noqa: E402


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ingest_helpers = _load("reliability_ingest_helpers", TESTS / "ingest" / "conftest.py")
tcp_proxy = _load("reliability_tcp_proxy", TESTS / "ingest" / "tcp_proxy.py")
storage_server = _load("reliability_storage_server", TESTS / "ingest" / "storage_server.py")
backfill_helpers = _load("reliability_backfill_helpers", TESTS / "ingest" / "backfilltest.py")
run_ingest = ingest_helpers.run_ingest  # the fixture, re-exported
broker_url = ingest_helpers.broker_url

__all__ = ["ADMIN_KEY", "OPERATOR_KEY", "ApiClient", "Seeder", "ingest_helpers", "make_settings", "seed_city"]

DATA_TABLES = (
    "sites",
    "devices",
    "uplinks",
    "bin_levels",
    "parking_events",
    "passenger_counts",
    "dead_letters",
    "api_keys",
)


def table_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in DATA_TABLES}  # type: ignore[index]


def seed_city(url: str) -> dict[str, Any]:
    """A small seeded city: a lot with spaces and readings, bins with levels, a bus line with a vehicle and stops,
    uplinks and dead letters. Returns the ids."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE " + ", ".join(DATA_TABLES) + ", environment_readings, fcnt_gaps, device_state"
            " RESTART IDENTITY CASCADE"
        )
        conn.execute(RESET_TENANTS)
    with fixed_now():
        s = Seeder(url)
        try:
            spaces = s.lot("lot-market", 4)
            for k, dev in enumerate(spaces):
                s.park(dev, hours_ago(2), k % 2 == 0)
                s.uplink(dev, hours_ago(2), f_cnt=1)
            bins = []
            for k in range(3):
                dev = s.bin(f"bin-{k:03d}", lat=51.33 + k * 0.001)
                s.levels(dev, [(hours_ago(48 - h), 10 + h * 1.5) for h in range(0, 48, 4)])
                bins.append(dev)
            s.site("line-5", "line", capacity=80)
            s.site("stop-a", "stop", parent_id="line-5", lat=51.34, lon=12.37, seq=1)
            s.site("bus-501", "vehicle", parent_id="line-5", capacity=80)
            bus = s.device("bus-501", codec="milesight-iot/vs133")
            for h in range(3):
                s.passengers(bus, hours_ago(3 - h), pax_in=5 + h, pax_out=2, stop_id="stop-a")
            s.dead_letter("envelope", "not JSON")
            s.dead_letter("device", "unknown device", dev_eui="00000000000000ff")
            return {"spaces": spaces, "bins": bins, "bus": bus, "lot": "lot-market", "line": "line-5"}
        finally:
            s.close()


class LiveApi:
    """``stadtpuls api`` in its own process; its log is kept to look for tracebacks."""

    def __init__(self, db_url: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STADTPULS_")}
        environ.update(
            {
                "STADTPULS_DATABASE_URL": db_url,
                "STADTPULS_OPERATOR_KEY": OPERATOR_KEY,
                "STADTPULS_ADMIN_KEY": ADMIN_KEY,
                "STADTPULS_RATE_LIMIT_PER_MINUTE": "0",
                "STADTPULS_API_CACHE_TTL": "0",
                "STADTPULS_LIVE_POLL_INTERVAL": "60",
            }
        )
        environ.update(env)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stadtpuls.cli", "api", "--host", "127.0.0.1", "--port", str(self.port)],
            env=environ,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code in (200, 503):
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("API did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def live_api(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    seed_city(db_url)
    api = LiveApi(db_url, tmp_path_factory.mktemp("api") / "api.log")
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., ApiClient]]:
    """``make_client(settings)`` -> an in-process :class:`ApiClient`; closed after the test."""
    from stadtpuls.api.main import create_app

    made: list[ApiClient] = []

    def make(settings: Any) -> ApiClient:
        c = ApiClient(create_app(settings))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


ARTIFACT = REPO / "artifacts" / "reliability.json"


def write_artifact(section: str, key: str, value: Any) -> None:
    """Merge ``value`` into ``artifacts/reliability.json`` under ``section.key`` (figures of drills and fuzzing).

    Test processes running side by side (``pytest -n``) merge one after the other, under a lock on a side file.
    """
    import fcntl
    import json

    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    with open(ARTIFACT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(ARTIFACT.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault(section, {})[key] = value
        ARTIFACT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class IngestProcess:
    """``stadtpuls ingest`` in its own process (so it can be killed), logging to ``log_path``."""

    def __init__(self, log_path: Path, **env: str) -> None:
        self.log_path = log_path
        environ = {k: v for k, v in os.environ.items() if not k.startswith("STADTPULS_")}
        environ.update(
            {"STADTPULS_METRICS_PORT": "0", "STADTPULS_FLUSH_INTERVAL": "0.05", "STADTPULS_REGISTRY_REFRESH": "1"}
        )
        environ.update(env)
        self.env = environ
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stadtpuls.cli", "ingest"], env=environ, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if self.proc.poll() is not None:
                raise AssertionError(f"ingest exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged within {timeout} s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: flush, ack, disconnect); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)
