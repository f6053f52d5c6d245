"""End-to-end ingest throughput: publisher -> project broker -> ingest -> fresh database.

A publisher process builds N real uplink messages (The Things Stack v3 and ChirpStack v4 envelopes with real
payload bytes of four device models, :mod:`simulators.loadgen`) before the clock starts, then publishes them at
QoS 1 to a Mosquitto started with the project's config. Measured, each in the same run on the same broker and
database server:

* **stadtpuls**: ``stadtpuls ingest`` as a subprocess; uplinks/s from the first publish until the last uplink is
  committed (its ``stored`` metric reaches N), and its CPU time (user + system, from /proc) per uplink;
* **naive**: a paho ``on_message`` callback doing ``json.loads``, the codec's per-message ``decode_row`` and one
  INSERT statement per message (raw uplink and domain row) on an autocommit connection, on a smaller N;
* **two workers**: two ``stadtpuls ingest`` processes on a shared subscription (``$share/bench/...``).

Medians over ``--runs`` runs; the data tables are emptied between runs.

With ``--script-codecs`` every device is decoded by a JavaScript codec script instead of its built-in codec: the
project's JavaScript versions of the four models (``tests/data/scripts/``) are stored as script codecs with readings
maps that feed the same domain tables, and the fleet is registered with them (the naive baseline keeps the
built-ins' per-message decoders).

    python -m bench.ingest [--count 1000000] [--naive-count 20000] [--runs 3] [--no-shared] [--script-codecs]
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from stadtpuls.demo.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, port_open
from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.codec_scripts import add_script
from stadtpuls.ingest.codecs.script import ReadingsMap
from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.migrate import migrate
from stadtpuls.simulators.loadgen import LoadFleet, make_fleet, make_uplinks
from stadtpuls.simulators.mqtt_raw import publish_all

from ._report import Report

TARGET_RATE, TARGET_RATIO, TARGET_CPU_US = 15_000, 10.0, 40.0
RECEIVE_MAXIMUM = 65535  # the MQTT v5 window must hold the batches in flight: inbox, preparing, two committing
TABLES = (
    "uplinks, bin_levels, parking_events, passenger_counts, environment_readings, dead_letters, fcnt_gaps, device_state"
)
_TICK = os.sysconf("SC_CLK_TCK")
STALL_SECONDS = 120.0  # no uplink stored for this long ends the run with the broker's drop count
MESSAGE_BYTES = 1500  # an upper bound of one load message as the broker stores it, for its queue limit


def _publisher(url: str, count: int, devices: int, pipe: Connection) -> None:
    messages = make_uplinks(make_fleet(devices), count)
    pipe.send("ready")
    while (cmd := pipe.recv()) != "stop":
        n = int(cmd)
        elapsed = publish_all(url, messages[:n], window=30_000, chunk=1000)
        pipe.send(elapsed)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def broker_dropped(broker: str) -> str:
    """Mosquitto's count of messages it dropped (a full client queue), from ``$SYS``; "unknown" without it."""
    import paho.mqtt.client as mqtt

    got: list[str] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_connect = lambda client, *a: client.subscribe("$SYS/broker/publish/messages/dropped")
    c.on_message = lambda client, userdata, m: got.append(m.payload.decode(errors="replace"))
    parts = urlsplit(broker)
    try:
        c.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    except OSError:
        return "unknown"
    c.loop_start()
    deadline = time.monotonic() + 15  # $SYS is published every sys_interval (10 s by default)
    while not got and time.monotonic() < deadline:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    return got[-1] if got else "unknown"


def _drop_session(broker: str, client_id: str) -> None:
    """Remove a persistent session from the broker (clean start, expiry 0)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    parts = urlsplit(broker)
    c.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=True, properties=props)
    c.loop_start()
    time.sleep(0.2)
    c.disconnect()
    c.loop_stop()


class Ingest:
    """A ``stadtpuls ingest`` subprocess."""

    def __init__(
        self, db: str, broker: str, client_id: str, workdir: Path, batch_size: int, share_group: str | None = None
    ) -> None:
        self.client_id = client_id
        self.port = free_port()
        env = {
            **os.environ,
            "STADTPULS_DATABASE_URL": db,
            "STADTPULS_MQTT_URL": broker,
            "STADTPULS_MQTT_CLIENT_ID": client_id,
            "STADTPULS_METRICS_PORT": str(self.port),
            "STADTPULS_SPOOL_DIR": str(workdir / "spool"),
            "STADTPULS_BATCH_SIZE": str(batch_size),
            "STADTPULS_LOG_LEVEL": "WARNING",
            "STADTPULS_MQTT_RECEIVE_MAXIMUM": str(RECEIVE_MAXIMUM),
        }
        if share_group:
            env["STADTPULS_MQTT_SHARE_GROUP"] = share_group
        self.log = open(workdir / f"{client_id}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stadtpuls.cli", "ingest"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while _metric(self.port, "stadtpuls_ingest_mqtt_connected") < 1:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"ingest did not start, see {self.log.name}")
            time.sleep(0.1)

    def stored(self) -> float:
        return _metric(self.port, "stadtpuls_ingest_stored_total")

    def cpu(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def stop(self, broker: str) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()
        _drop_session(broker, self.client_id)


def _empty(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES}")
        conn.execute("VACUUM ANALYZE")


def run_stadtpuls(
    db: str,
    broker: str,
    pub: Connection,
    count: int,
    workdir: Path,
    run: int,
    batch_size: int,
    workers: int = 1,
    others: dict[str, int] | None = None,
) -> tuple[float, float]:
    """uplinks/s and CPU µs per uplink of ``workers`` ingest processes; prints the CPU per uplink of the
    ``others`` processes (name -> pid: broker, publisher) in the same interval."""
    _empty(db)
    group = "bench" if workers > 1 else None
    procs = [
        Ingest(db, broker, f"bench-{run}-{w}-{uuid.uuid4().hex[:6]}", workdir, batch_size, group)
        for w in range(workers)
    ]
    time.sleep(0.5)
    cpu0 = sum(p.cpu() for p in procs)
    others0 = {name: _cpu_seconds(pid) for name, pid in (others or {}).items()}
    start = time.perf_counter()
    pub.send(str(count))
    half_at = 0.0
    last, last_change = -1.0, time.monotonic()
    while (stored := sum(p.stored() for p in procs)) < count:
        if not half_at and stored >= count // 2:
            half_at = time.perf_counter() - start
        if stored != last:
            last, last_change = stored, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            raise RuntimeError(
                f"no uplink stored for {STALL_SECONDS:.0f} s at {stored:,.0f} of {count:,};"
                f" messages the broker dropped: {broker_dropped(broker)}"
            )
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    cpu = sum(p.cpu() for p in procs) - cpu0
    side = {name: (_cpu_seconds(pid) - others0[name]) / count * 1e6 for name, pid in (others or {}).items()}
    if side:
        print("    same interval, CPU per uplink: " + ", ".join(f"{k} {v:.1f} µs" for k, v in side.items()))
    if half_at:
        second = count / 2 / (elapsed - half_at)
        print(f"    first half {count / 2 / half_at:,.0f} uplinks/s, second half {second:,.0f}")
    pub.recv()
    for p in procs:
        p.stop(broker)
    with psycopg.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM uplinks").fetchone()
    assert stored == (count,), f"stored {stored}, expected {count}"
    return count / elapsed, cpu / count * 1e6


_NAIVE_SQL = {
    "bin": ("bin_levels", ("distance_mm", "fill_pct", "battery_pct")),
    "space": ("parking_events", ("occupied",)),
    "vehicle": ("passenger_counts", ("pax_in", "pax_out")),
    "station": ("environment_readings", ("temperature_c", "humidity_pct", "co2_ppm")),
}


def _naive(db: str, broker: str, count: int, pipe: Connection) -> None:
    """The baseline: everything per message, in the paho callback."""
    import json

    import paho.mqtt.client as mqtt

    from stadtpuls.ingest.codecs import get

    conn = psycopg.connect(db, autocommit=True)
    devices = {}
    for eui, codec, lns_id, kind, site, depth, full in conn.execute(
        "SELECT d.dev_eui, d.codec, d.lns_device_id, s.kind, d.site_id, s.depth_mm, s.full_mm"
        " FROM devices d LEFT JOIN sites s USING (site_id)"
    ).fetchall():
        info = (eui, get(BUILTIN_OF.get(codec, codec)), kind, site, depth, full)
        devices[eui] = info
        if lns_id:
            devices[lns_id] = info
    done = [0, 0.0]

    def on_message(client: Any, userdata: Any, m: Any) -> None:
        msg = json.loads(m.payload)
        if "end_device_ids" in msg:
            up = msg["uplink_message"]
            dev = devices[msg["end_device_ids"]["device_id"]]
            port, payload, t = up.get("f_port", 0), base64.b64decode(up.get("frm_payload", "")), up["received_at"]
            f_cnt, lns = up.get("f_cnt", 0), "tts"
            key = uuid.uuid5(uuid.NAMESPACE_URL, f"{dev[0]}/{up.get('session_key_id')}/{f_cnt}/{t}")
        else:
            dev = devices[msg["deviceInfo"]["devEui"]]
            port, payload, t = msg["fPort"], base64.b64decode(msg["data"]), msg["time"]
            f_cnt, lns, key = msg.get("fCnt", 0), "chirpstack-v4", uuid.UUID(msg["deduplicationId"])
        eui, codec, kind, site, depth, full = dev
        obj = codec.decode_row(port, payload)
        values = {
            "distance_mm": obj.get("distance"),
            "battery_pct": obj.get("battery"),
            "fill_pct": (
                None
                if obj.get("distance") is None
                else max(0.0, min(100.0, (depth - obj["distance"]) / (depth - full) * 100))
            ),
            "occupied": obj.get("occupied"),
            "pax_in": obj.get("line_1", {}).get("period_in"),
            "pax_out": obj.get("line_1", {}).get("period_out"),
            "temperature_c": obj.get("temperature"),
            "humidity_pct": obj.get("humidity"),
            "co2_ppm": obj.get("co2"),
        }
        table, cols = _NAIVE_SQL[kind]
        conn.execute(
            f"WITH u AS (INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, payload, lns)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING)"
            f" INSERT INTO {table} (time, dev_eui, site_id, {', '.join(cols)})"
            f" VALUES (%s, %s, %s, {', '.join(['%s'] * len(cols))}) ON CONFLICT DO NOTHING",
            (t, stored_key(key.bytes), eui, f_cnt, port, payload, lns, t, eui, site, *[values[c] for c in cols]),
        )
        done[0] += 1
        if done[0] == count:
            done[1] = time.perf_counter()
            client.disconnect()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-naive", clean_session=False)
    client.on_message = on_message
    client.on_connect = lambda c, *a: c.subscribe([("v3/+/devices/+/up", 1), ("application/+/device/+/event/up", 1)])
    parts = urlsplit(broker)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    time.sleep(0.5)
    pipe.send("ready")
    while done[1] == 0.0:
        time.sleep(0.05)
    client.loop_stop()
    pipe.send(done[1])


def run_naive(db: str, broker: str, pub: Connection, count: int) -> float:
    _empty(db)
    here, there = mp.Pipe()
    proc = mp.Process(target=_naive, args=(db, broker, count, there))
    proc.start()
    assert here.recv() == "ready"
    start = time.perf_counter()
    pub.send(str(count))
    end = float(here.recv())
    pub.recv()
    proc.join(30)
    _drop_session(broker, "bench-naive")
    return count / (end - start)


def _server_url(workdir: Path) -> tuple[str, EmbeddedPostgres | None]:
    for var in ("STADTPULS_BENCH_DATABASE_URL", "STADTPULS_TEST_DATABASE_URL"):
        if os.environ.get(var):
            return os.environ[var], None
    if port_open("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432/postgres", None
    server = EmbeddedPostgres(workdir / "pg")
    return server.start(), server


#: the fleet's models: built-in codec -> (the project's script of it, readings map like the built-in's mapping)
SCRIPT_CODECS: dict[str, tuple[str, dict[str, Any]]] = {
    "milesight-iot/em310-udl": ("milesight-em310-udl.js", {"distance_mm": "distance", "battery_pct": "battery"}),
    "nwave/nps405": ("nwave-nps405.js", {"occupied": "occupied", "battery_v": "battery_voltage"}),
    "milesight-iot/vs133": ("milesight-vs133.js", {"pax_in": "line_1.period_in", "pax_out": "line_1.period_out"}),
    "elsys/ers": (
        "elsys-ers.js",
        {
            "temperature_c": "temperature",
            "humidity_pct": "humidity",
            "light_lux": "light",
            "motion": "motion",
            "co2_ppm": "co2",
            "battery_v": {"field": "vdd", "scale": 0.001},
        },
    ),
}


#: script codec id -> the built-in it stands in for
BUILTIN_OF = {"project/" + codec_id.split("/")[1] + "-js": codec_id for codec_id in SCRIPT_CODECS}


def _script_fleet(db: str, fleet: LoadFleet) -> LoadFleet:
    """Store the script codecs and return the fleet with every device on the script of its model."""
    scripts = Path(__file__).resolve().parents[1] / "tests" / "data" / "scripts"
    script_of = {builtin: script_id for script_id, builtin in BUILTIN_OF.items()}
    with psycopg.connect(db) as conn:
        for codec_id, (file, readings) in SCRIPT_CODECS.items():
            source = (scripts / file).read_text()
            add_script(conn, script_of[codec_id], source, readings=ReadingsMap.parse(readings))
    return LoadFleet([replace(d, codec=script_of[d.codec]) for d in fleet.devices])


def _fresh_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    migrate(url)
    return url


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1_000_000, help="uplinks per stadtpuls run")
    ap.add_argument("--naive-count", type=int, default=20_000, help="uplinks for the naive baseline")
    ap.add_argument("--runs", type=int, default=3, help="runs of each measurement (median)")
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=10_000, help="STADTPULS_BATCH_SIZE of the ingest runs")
    ap.add_argument("--no-shared", action="store_true", help="skip the two-worker run")
    ap.add_argument("--script-codecs", action="store_true", help="every device on a JavaScript codec script")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="stadtpuls-bench-"))
    server_url, server = _server_url(workdir)
    db_name = f"stadtpuls_bench_{os.getpid()}"
    # The project's broker config caps a client's queue at 512 MiB (a dead client must not fill the broker's
    # memory); a flood of a million uplinks published faster than they are stored needs more than that, and the
    # benchmark measures the ingest, not the cap.
    n_msgs = max(args.count, args.naive_count)
    queue = {"max_queued_messages": str(max(n_msgs, 1_000_000)), "max_queued_bytes": str(n_msgs * MESSAGE_BYTES)}
    broker = EmbeddedBroker(workdir / "broker", overrides=queue)
    pub_proc: mp.Process | None = None
    try:
        db = _fresh_database(server_url, db_name)
        fleet = make_fleet(args.devices)
        if args.script_codecs:
            fleet = _script_fleet(db, fleet)
        with psycopg.connect(db) as conn:
            report = apply(conn, parse_text(fleet.yaml(), "yaml"))
            assert not report.errors, report.errors
        broker_url = broker.start()
        pub, there = mp.Pipe()
        pub_proc = mp.Process(target=_publisher, args=(broker_url, n_msgs, args.devices, there), daemon=True)
        t0 = time.perf_counter()
        pub_proc.start()
        assert pub.recv() == "ready"
        print(
            f"built {n_msgs:,} uplink messages in {time.perf_counter() - t0:.1f} s; "
            f"broker: {broker.kind} with the project config; {os.cpu_count()} cores; batch size {args.batch_size}, "
            f"receive maximum {RECEIVE_MAXIMUM}" + ("; every device on a script codec" if args.script_codecs else "")
        )
        others = {"publisher": pub_proc.pid or 0}
        if broker._proc is not None:
            others["broker"] = broker._proc.pid
        rates, cpus = [], []
        for r in range(args.runs):
            rate, cpu = run_stadtpuls(db, broker_url, pub, args.count, workdir, r, args.batch_size, others=others)
            rates.append(rate)
            cpus.append(cpu)
            print(f"  stadtpuls run {r + 1}: {rate:,.0f} uplinks/s, {cpu:.1f} µs CPU/uplink")
        naive = []
        for r in range(args.runs):
            naive.append(run_naive(db, broker_url, pub, args.naive_count))
            print(f"  naive run {r + 1}: {naive[-1]:,.0f} uplinks/s")
        shared: list[tuple[float, float]] = []
        if not args.no_shared:
            for r in range(args.runs):
                shared.append(run_stadtpuls(db, broker_url, pub, args.count, workdir, 100 + r, args.batch_size, 2))
                print(f"  two workers run {r + 1}: {shared[-1][0]:,.0f} uplinks/s, {shared[-1][1]:.1f} µs CPU/uplink")
        rate, cpu, base = statistics.median(rates), statistics.median(cpus), statistics.median(naive)
        print()
        print(f"stadtpuls: {rate:,.0f} uplinks/s ({args.count:,} uplinks, median of {args.runs})")
        print(f"naive: {base:,.0f} uplinks/s ({args.naive_count:,} uplinks, median of {args.runs})")
        print(f"ratio: {rate / base:.1f}x")
        print(f"stadtpuls CPU: {cpu:.1f} µs per uplink")
        if shared:
            s_rate = statistics.median(x[0] for x in shared)
            s_cpu = statistics.median(x[1] for x in shared)
            print(f"two workers (shared subscription): {s_rate:,.0f} uplinks/s, {s_cpu:.1f} µs CPU per uplink")
        report = Report("ingest")
        report.figure("stadtpuls", rate, "uplinks/s")
        report.figure("ratio", rate / base, "x naive")
        report.figure("CPU", cpu, "µs/uplink")
        report.target(f">= {TARGET_RATE:,} uplinks/s", rate >= TARGET_RATE)
        report.target(f">= {TARGET_RATIO:.0f}x naive", rate / base >= TARGET_RATIO)
        report.target(f"<= {TARGET_CPU_US:.0f} µs CPU per uplink", cpu <= TARGET_CPU_US)
        report.write()
        pub.send("stop")
        return 0
    finally:
        if pub_proc is not None and pub_proc.is_alive():
            pub_proc.terminate()
        broker.stop()
        try:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        except psycopg.Error:
            pass
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
