"""Databases holding a week of a small city, for running every dashboard panel's SQL.

``city_week``: the simulator's small city for the week up to now, published over MQTT to the project's broker and
stored by the real ingest service (registry imported from the simulator's export, default fault mix). The
waste collection stops after the first day for half of the bins, so that bins are over their threshold at the
end, and one bin sensor falls silent for the last two days.

``planted_week``: a week generated here row by row, with faults planted at known places (a silent bin sensor,
low batteries, a silent parking sensor, a device never heard) and every emptying recorded, for tests that compare
a panel with what is known to be there. ``city_week`` falls back to it where the simulator is not installed.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest

from stadtpuls.alerts.evaluate import evaluate
from stadtpuls.alerts.kinds import default_rules
from stadtpuls.alerts.store import save_rule
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.migrate import migrate
from stadtpuls.settings import Settings

TZ = ZoneInfo("Europe/Berlin")
WASTE_TYPES = ("residual", "paper", "packaging", "organic", "glass")
RATE_PER_DAY = {"residual": 22.0, "paper": 14.0, "packaging": 18.0, "organic": 26.0, "glass": 9.0}
CENTER = (51.3397, 12.3731)
PLANTED_END = datetime(2025, 3, 14, 2, 30, 15, tzinfo=UTC)


@dataclass(frozen=True)
class CityWeek:
    url: str
    start: datetime
    end: datetime
    emptyings: list[tuple[str, datetime]] | None = None  # (bin, reading time) of every emptying, when known


def eui(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class _Week:
    """Rows of every table, built in memory and copied in."""

    def __init__(self, end: datetime, seed: int = 7) -> None:
        self.rnd = random.Random(seed)
        self.end = end
        self.start = end - timedelta(days=7)
        self.rows: dict[str, list[tuple[object, ...]]] = {}
        self.fcnt: dict[str, int] = {}
        self.last: dict[str, datetime] = {}
        self.emptyings: list[tuple[str, datetime]] = []

    def add(self, table: str, *row: object) -> None:
        self.rows.setdefault(table, []).append(row)

    def site(self, site_id: str, kind: str, name: str, parent: str | None = None, **kw: object) -> None:
        lat = CENTER[0] + self.rnd.uniform(-0.02, 0.02)
        lon = CENTER[1] + self.rnd.uniform(-0.03, 0.03)
        self.add(
            "sites",
            site_id,
            kind,
            name,
            parent,
            lat,
            lon,
            kw.get("waste_type"),
            kw.get("depth_mm"),
            kw.get("full_mm"),
            kw.get("volume_l"),
            kw.get("threshold_pct"),
            kw.get("capacity"),
            kw.get("seq"),
        )

    def device(self, dev_eui: str, codec: str, site_id: str | None, interval_s: int) -> None:
        self.add("devices", dev_eui, codec, f"{codec} {dev_eui[-4:]}", site_id, interval_s)

    def uplink(self, t: datetime, dev_eui: str, f_port: int = 1) -> None:
        """The raw uplink behind a reading, now and then after a frame-counter gap."""
        f_cnt = self.fcnt.get(dev_eui, 0) + 1
        if self.rnd.random() < 0.01:
            missing = self.rnd.randint(1, 4)
            self.add("fcnt_gaps", t, dev_eui, f_cnt, f_cnt + missing - 1)
            f_cnt += missing
        self.fcnt[dev_eui] = f_cnt
        self.last[dev_eui] = t
        rssi = round(self.rnd.gauss(-97, 12), 1)
        snr = round(self.rnd.gauss(3, 5), 1)
        lns = "tts" if int(dev_eui[-1], 16) % 2 else "chirpstack-v4"
        key = stored_key(uuid.uuid5(uuid.NAMESPACE_OID, f"{dev_eui}/{t.isoformat()}").bytes)
        lag = timedelta(milliseconds=self.rnd.uniform(40, 900))
        self.add(
            "uplinks",
            t,
            key,
            dev_eui,
            f_cnt,
            f_port,
            self.rnd.randbytes(8),
            rssi,
            snr,
            5,
            7,
            868100000,
            self.rnd.randint(1, 3),
            "gw-" + dev_eui[:4],
            lns,
            t + lag,
        )

    def times(self, every: timedelta, jitter_s: float = 60) -> Iterator[datetime]:
        t = self.start + timedelta(seconds=self.rnd.uniform(0, every.total_seconds()))
        while t <= self.end:
            yield t
            t += every + timedelta(seconds=self.rnd.uniform(-jitter_s, jitter_s))

    def bins(self, n: int = 30) -> None:
        for i in range(n):
            kind = WASTE_TYPES[i % len(WASTE_TYPES)]
            site_id = f"bin-{i + 1:03d}"
            self.site(
                site_id,
                "bin",
                f"{kind.title()} bin {i + 1}",
                waste_type=kind,
                depth_mm=1200,
                full_mm=200,
                volume_l=1100,
                threshold_pct=None if i % 7 == 0 else 80.0,
            )
            dev = eui(site_id)
            codec = "milesight-iot/em310-udl" if i % 2 else "netvox/r718x"
            self.device(dev, codec, site_id, 3600)
            rate = RATE_PER_DAY[kind] * self.rnd.uniform(0.6, 1.6) / 24
            period = self.rnd.choice((2, 3, 4, 7))
            phase = self.rnd.randrange(period)
            silent_from = self.end - timedelta(days=2) if i == 6 else None
            level = self.rnd.uniform(0, 40)
            prev = None
            for t in self.times(timedelta(hours=1)):
                local = t.astimezone(TZ)
                if (local.toordinal() + phase) % period == 0 and local.hour == 7 and level > 30:
                    level = self.rnd.uniform(0, 4)  # the truck came
                    if prev is not None and not (silent_from and t > silent_from):
                        self.emptyings.append((site_id, t))
                level = min(100.0, level + rate * ((t - prev).total_seconds() / 3600 if prev else 0))
                prev = t
                if silent_from and t > silent_from:
                    continue
                fill = max(0.0, min(100.0, level + self.rnd.gauss(0, 1.5)))
                distance = 1200 - fill / 100 * 1000
                battery_v = None if codec.startswith("milesight") else (3.05 if i == 4 else 3.6)
                battery_pct = (12.0 if i == 9 else 90.0) if codec.startswith("milesight") else None
                self.add("bin_levels", t, dev, site_id, distance, fill, 14.0, battery_v, battery_pct)
                self.uplink(t, dev)

    def parking(self) -> None:
        for lot, name, spaces in (
            ("lot-markt", "Marktplatz", 16),
            ("lot-bahnhof", "Hauptbahnhof", 24),
            ("lot-zoo", "Zoo", 12),
        ):
            self.site(lot, "lot", name, capacity=spaces)
            for s in range(spaces):
                space = f"{lot}-s{s + 1:02d}"
                self.site(space, "space", f"{name} {s + 1}", lot)
                dev = eui(space)
                self.device(dev, "nwave/nps405", space, 1800)
                silent_from = self.end - timedelta(hours=6) if (lot, s) == ("lot-zoo", 0) else None
                occupied = False
                for t in self.times(timedelta(minutes=30)):
                    local = t.astimezone(TZ)
                    busy = 0.85 if 8 <= local.hour < 19 else 0.2
                    busy *= 1.1 if local.weekday() == 5 else (0.6 if local.weekday() == 6 else 1.0)
                    if self.rnd.random() < 0.35:
                        occupied = self.rnd.random() < busy
                    if silent_from and t > silent_from:
                        continue
                    self.add("parking_events", t, dev, space, lot, occupied, 3.5)
                    self.uplink(t, dev, 2)

    def buses(self) -> None:
        for line, vehicles in (("line-5", 2), ("line-8", 2)):
            self.site(line, "line", f"Linie {line[-1]}")
            stops = [f"{line}-stop{k + 1}" for k in range(6)]
            for k, stop in enumerate(stops):
                self.site(stop, "stop", f"Stop {line[-1]}.{k + 1}", line, seq=k + 1)
            for v in range(vehicles):
                vehicle = f"{line}-bus{v + 1}"
                self.site(vehicle, "vehicle", f"Bus {line[-1]}/{v + 1}", line, capacity=80)
                doors, pax = eui(vehicle + "/doors"), eui(vehicle + "/pax")
                # counters report at stops only, and buses stand still at night: a long report interval
                self.device(doors, "milesight-iot/vs133", vehicle, 12 * 3600)
                self.device(pax, "opensource/esp32-paxcounter", vehicle, 12 * 3600)
                onboard, k = 0, v * 3
                for t in self.times(timedelta(minutes=4), jitter_s=20):
                    local = t.astimezone(TZ)
                    if not 5 <= local.hour < 23:
                        onboard = 0
                        continue
                    rush = 3.0 if local.hour in (7, 8, 16, 17) else 1.0
                    stop = stops[k % len(stops)]
                    k += 1
                    out = self.rnd.randint(0, onboard) if stop != stops[-1] else onboard
                    board = min(80 - (onboard - out), int(self.rnd.expovariate(1 / (3 * rush))))
                    onboard += board - out
                    self.add(
                        "passenger_counts",
                        t - timedelta(seconds=30),
                        pax,
                        vehicle,
                        line,
                        stop,
                        None,
                        None,
                        onboard + self.rnd.randint(0, 3),
                    )
                    self.uplink(t - timedelta(seconds=30), pax)
                    self.add("passenger_counts", t, doors, vehicle, line, stop, board, out, None)
                    self.uplink(t, doors, 85)

    def environment(self) -> None:
        for k in range(2):
            station = f"station-{k + 1}"
            self.site(station, "station", f"Air station {k + 1}")
            dev = eui(station)
            self.device(dev, "elsys/ers", station, 900)
            for t in self.times(timedelta(minutes=15)):
                hour = t.astimezone(TZ).hour
                self.add(
                    "environment_readings",
                    t,
                    dev,
                    station,
                    8 + 6 * (10 <= hour < 18),
                    60.0,
                    420 + self.rnd.uniform(0, 200),
                    300.0,
                    0,
                    3.6,
                )
                self.uplink(t, dev)

    def faults(self) -> None:
        self.device(eui("spare"), "dragino/lht65", None, 3600)  # registered, never heard
        reasons = [
            ("envelope", "not JSON"),
            ("device", "unknown device"),
            ("codec", "payload length 3 not valid"),
            ("codec", "unknown fPort 9"),
        ]
        for t in self.times(timedelta(hours=4), jitter_s=600):
            stage, reason = self.rnd.choice(reasons)
            dev = eui("stranger") if stage == "device" else None
            self.add("dead_letters", t, "v3/city@ttn/devices/x/up", stage, reason, dev, "tts", b"{")
        for dev, f_cnt in self.fcnt.items():
            self.add("device_state", dev, f_cnt, self.last[dev], "s1", self.start)


COLUMNS = {
    "sites": "site_id, kind, name, parent_id, lat, lon, waste_type, depth_mm, full_mm, volume_l, threshold_pct, "
    "capacity, seq",
    "devices": "dev_eui, codec, name, site_id, report_interval_s",
    "uplinks": "time, dedup_key, dev_eui, f_cnt, f_port, payload, rssi, snr, dr, sf, frequency, gateways, "
    "gateway_id, lns, received_at",
    "bin_levels": "time, dev_eui, site_id, distance_mm, fill_pct, temperature_c, battery_v, battery_pct",
    "parking_events": "time, dev_eui, site_id, lot_id, occupied, battery_v",
    "passenger_counts": "time, dev_eui, site_id, line_id, stop_id, pax_in, pax_out, pax_count",
    "environment_readings": "time, dev_eui, site_id, temperature_c, humidity_pct, co2_ppm, light_lux, motion, "
    "battery_v",
    "dead_letters": "received_at, topic, stage, reason, dev_eui, lns, payload",
    "fcnt_gaps": "time, dev_eui, f_cnt_from, f_cnt_to",
    "device_state": "dev_eui, last_f_cnt, last_time, session, last_join",
}


def seed_week(url: str, end: datetime) -> CityWeek:
    week = _Week(end)
    week.bins()
    week.parking()
    week.buses()
    week.environment()
    week.faults()
    with psycopg.connect(url) as conn:
        for table, columns in COLUMNS.items():  # parents before children (sites' parent_id)
            with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in week.rows.get(table, []):
                    copy.write_row(row)
        conn.execute("SELECT rollups_build()")  # loaded past the writer: build the rollups as the migration does
    evaluate_alerts(url, week.end)
    return CityWeek(url=url, start=week.start, end=week.end, emptyings=week.emptyings)


def evaluate_alerts(url: str, at: datetime) -> None:
    """The default alert rules, evaluated once at ``at`` (the alert panels' data)."""
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.transaction():
            for rule in default_rules(battery_low_v=3.2, battery_low_pct=20):
                save_rule(conn, rule)
        evaluate(conn, now=at, next_service=at + timedelta(days=1))


@pytest.fixture(scope="module")
def planted_week(new_database) -> CityWeek:  # type: ignore[no-untyped-def]
    """A fresh migrated database with the planted week, ending at a fixed instant (a Friday night, 03:30 local)."""
    url = new_database()
    migrate(url)
    return seed_week(url, PLANTED_END)


def simulate_week(url: str, broker_url: str, spool: Path) -> CityWeek:
    """The simulator's small city for the week before now, through the broker and the ingest into ``url``."""
    from stadtpuls.ingest.service import IngestService
    from stadtpuls.simulators.city import build_city
    from stadtpuls.simulators.engine import SimConfig, Simulation
    from stadtpuls.simulators.export import registry_yaml
    from stadtpuls.simulators.faults import FaultConfig
    from stadtpuls.simulators.mqtt_raw import publish_all
    from stadtpuls.simulators.timebase import DAY_US, US
    from stadtpuls.simulators.uplinks import topic

    end_s = int(time.time()) // 3600 * 3600
    city = build_city("small", 3, "mixed")
    bins = [s.site_id for s in city.sites_of("bin")]
    first_day = datetime.fromtimestamp(end_s - 6 * 86400, TZ).date()

    def schedule(day: object, now_us: int) -> list[str]:
        return bins[::2] if day == first_day else []

    config = SimConfig(
        city="small",
        seed=3,
        start_us=(end_s - 7 * 86400) * US,
        duration_us=7 * DAY_US,
        fmt="mixed",
        faults=FaultConfig.parse("default"),
        schedule=schedule,
    )
    sim = Simulation(config, city=city)
    silent = topic(sim.net, city.devices_on("bin")[0])
    cut = (end_s - 2 * 86400) * US
    messages = [(m.topic, m.payload) for m in sim.messages() if not (m.topic == silent and m.t_us >= cut)]
    with psycopg.connect(url) as conn:
        report = apply(conn, parse_text(registry_yaml(city), "yaml"))
    assert not report.errors, report.errors
    settings = Settings(
        database_url=url,
        mqtt_url=broker_url,
        mqtt_client_id=f"dashboards-{uuid.uuid4().hex[:8]}",
        batch_size=5000,
        flush_interval=0.05,
        metrics_port=0,
        spool_dir=spool,
    )
    service = IngestService(settings, database_url=url, mqtt_url=broker_url)
    service.start()
    try:
        assert service.source.connected.wait(10), "ingest did not connect"
        publish_all(broker_url, messages)
        deadline = time.monotonic() + 120
        while service.metrics.received._value.get() < len(messages):  # noqa: SLF001 - counter value
            assert time.monotonic() < deadline, "ingest did not receive every message"
            time.sleep(0.1)
    finally:
        service.stop()  # flushes, commits and acks what was received
        _end_session(broker_url, settings.mqtt_client_id)
    start = datetime.fromtimestamp(end_s - 7 * 86400, UTC)
    end = datetime.now(UTC).replace(microsecond=0)
    evaluate_alerts(url, end)
    return CityWeek(url=url, start=start, end=end)


def _end_session(broker_url: str, client_id: str) -> None:
    """Remove the ingest's persistent session from the shared test broker (a clean start, then a disconnect)."""
    import paho.mqtt.client as mqtt

    u = urlsplit(broker_url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(u.hostname or "127.0.0.1", u.port or 1883, clean_start=True)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


@pytest.fixture(scope="module")
def city_week(request: pytest.FixtureRequest, new_database, tmp_path_factory) -> CityWeek:  # type: ignore[no-untyped-def]
    """The simulated week through the real ingest, or the planted week where the simulator is not installed."""
    try:
        import stadtpuls.simulators.engine  # noqa: F401
    except ImportError:
        return request.getfixturevalue("planted_week")  # type: ignore[no-any-return]
    broker = request.getfixturevalue("project_broker")
    url = new_database()
    migrate(url)
    return simulate_week(url, broker.url, tmp_path_factory.mktemp("spool"))
