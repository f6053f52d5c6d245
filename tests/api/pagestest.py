"""Helpers of the browser tests: a small city registered through the registry file format with current readings,
the real ``stadtpuls api`` and ``stadtpuls ingest`` as subprocesses, an MQTT publisher of real parking-sensor
uplinks (Nwave NPS405 bytes in a The Things Stack v3 envelope), and a WCAG contrast probe run in the page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
import psycopg
import yaml

from stadtpuls.demo.embedded import free_port
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.codecs import get as get_codec
from stadtpuls.schema import ALERT_TABLES, CONFIGURATION_TABLES, INGEST_TABLES, RESET_TENANTS
from stadtpuls.simulators.messages import tts_topic, tts_uplink

OPERATOR_KEY = "pages-operator-key-0123456789abcdef"
APP_ID, TENANT = "city-parking", "ttn"
DEPOT = (51.3397, 12.3731)  # the settings' default depot
LOTS = [  # lot_id, name, spaces, spaces occupied at the start
    ("lot-markt", "Marktplatz", 8, 3),
    ("lot-bahnhof", "Hauptbahnhof P+R", 6, 6),
    ("lot-park", "Am Stadtpark", 10, 2),
]
DATA_TABLES = tuple(t.name for t in INGEST_TABLES) + CONFIGURATION_TABLES + ALERT_TABLES


def space_eui(lot_index: int, space: int) -> str:
    return f"70b3d5{lot_index:02x}0000{space:04x}"


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def registry() -> dict[str, list[dict[str, Any]]]:
    """Lots with their spaces and sensors, a bus line, and bins around the depot, in the registry file format."""
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for i, (lot_id, name, n, _) in enumerate(LOTS):
        sites.append(
            {
                "site_id": lot_id,
                "kind": "lot",
                "name": name,
                "capacity": n,
                "lat": 51.34 + i * 0.004,
                "lon": 12.37 + i * 0.006,
            }
        )
        for s in range(n):
            space = f"{lot_id}-{s + 1:02d}"
            sites.append({"site_id": space, "kind": "space", "name": space, "parent_id": lot_id})
            devices.append(
                {
                    "dev_eui": space_eui(i, s),
                    "codec": "nwave/nps405",
                    "site_id": space,
                    "lns_device_id": f"park-{i}-{s}",
                    "report_interval_s": 600,
                }
            )
    sites.append({"site_id": "line-5", "kind": "line", "name": "5"})
    for k, stop in enumerate(("Hauptbahnhof", "Augustusplatz", "Connewitz Kreuz")):
        sites.append(
            {
                "site_id": f"line-5-{k}",
                "kind": "stop",
                "name": stop,
                "parent_id": "line-5",
                "seq": k,
                "lat": 51.34 - k * 0.01,
                "lon": 12.375,
            }
        )
    for v in range(2):
        sites.append(
            {"site_id": f"bus-5{v}", "kind": "vehicle", "name": f"50{v + 1}", "parent_id": "line-5", "capacity": 90}
        )
        devices.append(
            {
                "dev_eui": f"24e1240000005{v:03x}",
                "codec": "milesight-iot/vs133",
                "site_id": f"bus-5{v}",
                "report_interval_s": 600,
            }
        )
    for b in range(8):
        sites.append(
            {
                "site_id": f"bin-{b:02d}",
                "kind": "bin",
                "name": f"Container {b + 1}",
                "lat": DEPOT[0] + 0.01 * ((b % 4) - 1.5),
                "lon": DEPOT[1] + 0.012 * (b // 4 - 0.5) + 0.002 * b,
                "waste_type": ("residual", "paper", "packaging", "glass")[b % 4],
                "depth_mm": 1200,
                "full_mm": 200,
                "volume_l": 1100,
                "threshold_pct": 80,
            }
        )
        devices.append(
            {
                "dev_eui": f"a84041000000b{b:03x}",
                "codec": "milesight-iot/em310-udl",
                "site_id": f"bin-{b:02d}",
                "report_interval_s": 3600,
            }
        )
    return {"sites": sites, "devices": devices}


def seed_city(url: str) -> None:
    """Empty the database, register the city and store its current state (as the writer would have)."""
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(DATA_TABLES) + " RESTART IDENTITY CASCADE")
        conn.execute(RESET_TENANTS)
    fleet = parse_text(yaml.safe_dump(registry()), "yaml")
    with psycopg.connect(url) as conn:
        report = apply(conn, fleet)
        assert not report.errors, report.errors
        for i, (lot_id, _, n, occupied) in enumerate(LOTS):
            for s in range(n):
                conn.execute(
                    "INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied) VALUES (%s, %s, %s, %s, %s)",
                    (now - timedelta(seconds=60 + s), space_eui(i, s), f"{lot_id}-{s + 1:02d}", lot_id, s < occupied),
                )
        for v, (board, leave) in enumerate(((38, 4), (71, 9))):
            conn.execute(
                "INSERT INTO passenger_counts (time, dev_eui, site_id, line_id, stop_id, pax_in, pax_out)"
                " VALUES (%s, %s, %s, 'line-5', 'line-5-1', %s, %s)",
                (now - timedelta(minutes=2), f"24e1240000005{v:03x}", f"bus-5{v}", board, leave),
            )
        for b in range(8):  # filling for six days; even bins fast (over threshold), odd ones slowly
            rate = 16.0 if b % 2 == 0 else 3.0
            for h in range(0, 6 * 24 + 1, 6):
                fill = min(100.0, 5 + rate * h / 24)
                conn.execute(
                    "INSERT INTO bin_levels (time, dev_eui, site_id, distance_mm, fill_pct, battery_v)"
                    " VALUES (%s, %s, %s, %s, %s, 3.6)",
                    (
                        now - timedelta(hours=6 * 24 - h),
                        f"a84041000000b{b:03x}",
                        f"bin-{b:02d}",
                        1200 - fill * 10,
                        fill,
                    ),
                )
        conn.commit()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as res:
            return bool(res.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Service:
    """A ``stadtpuls`` subcommand as a subprocess with its own environment; output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stadtpuls.cli", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def api_service(db_url: str, log_dir: Path, port: int | None = None, **settings: str) -> tuple[Service, str]:
    """``stadtpuls api`` on the test database; the maps draw without tiles unless ``MAP_TILE_URL=...`` is given."""
    port = port or free_port()
    env = {
        "STADTPULS_DATABASE_URL": db_url,
        "STADTPULS_OPERATOR_KEY": OPERATOR_KEY,
        "STADTPULS_LIVE_POLL_INTERVAL": "1",
        "STADTPULS_RATE_LIMIT_PER_MINUTE": "0",
        "STADTPULS_LOG_LEVEL": "WARNING",
        "STADTPULS_MAP_TILE_URL": "",
        **{f"STADTPULS_{k}": v for k, v in settings.items()},
    }
    service = Service(["api", "--host", "127.0.0.1", "--port", str(port)], env, log_dir / f"api-{port}.log")
    return service, f"http://127.0.0.1:{port}"


def start_api(service: Service, base: str) -> None:
    service.start()
    ok = wait_for(lambda: _http_ok(base + "/health") or not service.alive(), 60, "API /health")
    assert ok and service.alive(), "API did not start:\n" + service.log_tail()


@contextmanager
def running_api(db_url: str, log_dir: Path, **settings: str) -> Iterator[str]:
    """``stadtpuls api`` (:func:`api_service`) started and answering for the block; its base URL."""
    service, base = api_service(db_url, log_dir, **settings)
    start_api(service, base)
    try:
        yield base
    finally:
        service.stop()


def ingest_service(db_url: str, mqtt_url: str, tmp: Path, client_id: str) -> Service:
    env = {
        "STADTPULS_DATABASE_URL": db_url,
        "STADTPULS_MQTT_URL": mqtt_url,
        "STADTPULS_MQTT_CLIENT_ID": client_id,
        "STADTPULS_METRICS_PORT": "0",
        "STADTPULS_SPOOL_DIR": str(tmp / "spool"),
        "STADTPULS_FLUSH_INTERVAL": "0.05",
        "STADTPULS_LOG_LEVEL": "WARNING",
    }
    return Service(["ingest"], env, tmp / "ingest.log")


class Publisher:
    """Publishes real parking-sensor uplinks (QoS 1) the way The Things Stack does."""

    def __init__(self, mqtt_url: str) -> None:
        parts = urlsplit(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self.codec = get_codec("nwave/nps405")
        self.f_cnt = 100

    def parking(self, lot_index: int, space: int, occupied: bool) -> float:
        """Publish one state change; returns the wall-clock time (s) just before the publish."""
        self.f_cnt += 1
        buf, offsets = self.codec.encode(1, {"occupied": [occupied], "previous_state_duration": [5]})
        payload = bytes(buf[int(offsets[0]) : int(offsets[1])])
        device_id = f"park-{lot_index}-{space}"
        msg = tts_uplink(
            device_id=device_id,
            app_id=APP_ID,
            received_at=datetime.now(UTC),
            f_port=1,
            payload=payload,
            f_cnt=self.f_cnt,
            dev_eui=space_eui(lot_index, space),
        )
        data = orjson.dumps(msg)
        t0 = time.time()
        info = self.client.publish(tts_topic(APP_ID, device_id, "up", TENANT), data, qos=1)
        info.wait_for_publish(10)
        return t0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# WCAG 2 contrast ratio of each selector's text against the first opaque background behind it (min over matches)
CONTRAST_JS = """
(selectors) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const background = (el) => {
    for (let n = el; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = {};
  for (const sel of selectors) {
    let worst = null;
    for (const el of document.querySelectorAll(sel)) {
      if (!el.offsetParent && el.tagName !== "BODY") continue;
      const a = lum(rgb(getComputedStyle(el).color).slice(0, 3));
      const b = lum(background(el));
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      worst = worst === null ? ratio : Math.min(worst, ratio);
    }
    out[sel] = worst;
  }
  return out;
}
"""


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"  # screenshots and figures of the browser tests


def new_page(browser: Any, base: str, width: int = 1280, locale: str = "en-GB") -> tuple[Any, Any, list[str]]:
    """A fresh browser context and page; the list collects requests to other origins, script errors and console
    errors (tests that expect none assert it empty)."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale=locale, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((base, "data:", "blob:"))
            else problems.append(f"request to another origin: {r.url}")
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    return context, page, problems
