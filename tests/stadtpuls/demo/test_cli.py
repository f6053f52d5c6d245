"""``stadtpuls demo`` end to end on embedded PostgreSQL and Mosquitto (no STADTPULS_DATABASE_URL / MQTT_URL): it comes
up, the pages and the API answer with live data, it stops by itself (``--duration``) or on Ctrl-C with exit code 0,
and leaves no process behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stadtpuls.demo.embedded import free_port

START_TIMEOUT_S = 180.0

# A demo may take START_TIMEOUT_S to come up and then runs for a minute.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(START_TIMEOUT_S + 240)]


class Demo:
    """``stadtpuls demo`` as a subprocess in its own process group; its output is collected line by line."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("STADTPULS_DATABASE_URL", "STADTPULS_MQTT_URL")}
        env.update(STADTPULS_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", STADTPULS_LOG_LEVEL="INFO")
        env.pop("STADTPULS_OPERATOR_KEY", None)
        self.port = free_port()
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stadtpuls.cli", "demo", "--port", str(self.port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_running(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not any("stadtpuls demo is running" in line for line in self.lines):
            assert self.proc.poll() is None, f"demo exited with {self.proc.returncode}:\n{self.output}"
            assert time.monotonic() < deadline, f"demo did not come up:\n{self.output}"
            time.sleep(0.2)

    def child_pids(self) -> dict[str, int]:
        pids: dict[str, int] = {}
        for line in self.lines:
            m = re.search(r'event="child started" child=(\S+) pid=(\d+)', line)
            if m:
                pids[m.group(1)] = int(m.group(2))
        return pids

    def operator_key(self) -> str:
        m = re.search(r"operator key: (\S+)", self.output)
        assert m, self.output
        return m.group(1)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def demo_dir() -> Iterator[Path]:
    """STADTPULS_DATA_DIR of the run: outside pytest's private temporary directory, because the embedded server
    runs as its own user when the tests run as root and must reach its data directory."""
    base = Path(tempfile.mkdtemp(prefix="stadtpuls-demo-test-"))
    base.chmod(0o755)
    try:
        yield base / "var"
        assert leftovers(base) == [], "processes left behind"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def leftovers(path: Path) -> list[str]:
    """Processes whose command line mentions ``path`` (postgres -D ..., mosquitto -c ...)."""
    found = []
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == me:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if str(path) in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def next_lots_event(stream: Iterator[str]) -> str:
    event = ""
    for line in stream:
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "lots":
            return line[5:].strip()
    raise AssertionError("stream ended")


def test_demo_comes_up_serves_live_data_and_exits_by_itself_leaving_nothing(demo_dir: Path) -> None:
    demo = Demo(demo_dir, "--duration", "60")
    try:
        demo.wait_running()
        out = demo.output
        for label in ("parking", "buses", "pickups", "alerts", "API docs", "open data", "metrics"):
            assert re.search(rf"^\s+{label}\s+http://", out, re.M), f"no {label} URL printed:\n{out}"
        assert "skipped" not in out, out
        for slug in ("nordstadt", "suedstadt"):  # two towns side by side, each with its pages and operator key
            assert re.search(rf"^\s+{slug}\s+{demo.base}/t/{slug}/parking\s", out, re.M), out
            assert re.search(rf"{demo.base}/t/{slug}/operator/pickups\s+operator key of \S+: sp_\w+", out), out
        pids = demo.child_pids()
        assert {"broker", "ingest", "api", "alerts", "simulator"} <= set(pids), out
        with httpx.Client(base_url=demo.base, timeout=10) as client:
            for path in ("/", "/parking", "/buses", "/operator/pickups", "/operator/alerts"):
                res = client.get(path)
                assert res.status_code == 200 and res.headers["content-type"].startswith("text/html"), path
            assert client.get("/docs").status_code == 200
            admin = re.search(r"^\s+hub\s.*admin key (\S+)$", out, re.M)
            assert admin, out
            assert client.get("/api/v1/keys", headers={"X-API-Key": admin.group(1)}).status_code == 200
            for slug in ("nordstadt", "suedstadt"):
                page = client.get(f"/t/{slug}/parking")
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), slug
                assert client.get(f"/api/v1/t/{slug}/parking/lots").json()["data"], slug
            sites = client.get("/api/public/v3/parking-sites").json()["items"]
            assert sites and all(s["type"] != "OTHER" for s in sites)  # the simulated registry's lot facts
            key = {"X-API-Key": demo.operator_key()}
            metrics = client.get("/metrics", headers=key)
            assert metrics.status_code == 200 and "stadtpuls_" in metrics.text
            lots = client.get("/api/v1/parking/lots").json()["data"]
            assert lots, "the demo city has no parking lots"
            assert client.get("/api/v1/waste/bins", headers=key).status_code == 200
            deadline = time.monotonic() + 30  # the alerts service adds the default rules at its start
            while client.get("/api/v1/alert-rules", headers=key).json()["count"] < 8:
                assert time.monotonic() < deadline, "the alerts service added no default rules"
                time.sleep(0.5)
            # live: the stream delivers the lots on connect and then a change, while the demo runs
            with client.stream("GET", "/api/v1/parking/stream", timeout=60) as res:
                lines = res.iter_lines()
                first = next_lots_event(lines)
                assert '"free"' in first
                changed = next_lots_event(lines)
                assert changed != first
            counted = client.get("/api/v1/parking/lots").json()["data"]
            assert sum(lot["free"] + lot["occupied"] for lot in counted) > 0
        assert demo.proc.wait(120) == 0, demo.output
        assert "everything stopped" in demo.output
        for name, pid in pids.items():
            assert not alive(pid), f"{name} (pid {pid}) still running"
    finally:
        demo.kill()


def test_demo_stops_everything_on_ctrl_c(demo_dir: Path) -> None:
    demo = Demo(demo_dir)
    try:
        demo.wait_running()
        pids = demo.child_pids()
        assert pids, demo.output
        os.killpg(demo.proc.pid, signal.SIGINT)  # what a terminal sends to the foreground process group
        assert demo.proc.wait(90) == 0, demo.output
        assert "stopping (SIGINT)" in demo.output
        for name, pid in pids.items():
            assert not alive(pid), f"{name} (pid {pid}) still running"
    finally:
        demo.kill()
