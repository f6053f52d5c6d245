"""Public parking endpoints under concurrent load: latency p50/p99 and requests per second.

A fresh database gets 30 days of the simulator's medium city (registry imported, readings generated with numpy and
written with COPY). The API runs with uvicorn in a subprocess; the load comes from another process (asyncio, 50
concurrent keep-alive connections) cycling over ``/api/v1/parking/lots``, ``/lots/{id}`` and ``/lots.geojson``:

* open loop at the target rate (default 500 requests/s); latency counts from each request's scheduled start, so
  a server that falls behind is charged for the queue it causes;
* closed loop (each client sends its next request as soon as the last one returned): the most the server answers.

The baseline is the same API with the lots cache turned off (``STADTPULS_API_CACHE_TTL=0``): every request runs
the lots query. Then each open-data feed alone at the same rate on the cached API: ParkAPI v3 (sites, a radius
search, a page of spots), DATEX II, GTFS-Realtime and the SensorThings API (the newest 100 Observations of a bin's
fill level: ``Datastreams(<id>)/Observations?$top=100&$orderby=phenomenonTime desc``) and NGSI-LD (the lots, a
hundred bins); ``--no-feeds`` skips them.
Figures are medians of several runs. Target: p99 under 50 ms at 500 requests/s, for the parking endpoints and for
each feed.

With ``--towns N`` (N > 1) the city is split into N towns (tenants ``town-1`` ...: each lot with its spaces, each
line with its stops and buses, each bin goes to one town by a hash of its id, so N small towns of about equal
size), and a third measurement on the cached API mixes every town's prefixed public routes at the same rate:
``/api/v1/t/{slug}/parking/lots``, a lot, the GeoJSON, the bus lines, ParkAPI and GTFS-Realtime under
``/t/{slug}``, and ``/api/v1/district``.

    python -m bench.api [--days 30] [--rate 500] [--concurrency 50] [--duration 8] [--runs 3] [--no-feeds]
                        [--towns 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import zip_longest
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

from stadtpuls.demo.embedded import EmbeddedPostgres, free_port, port_open
from stadtpuls.migrate import migrate

from ._citydata import seed_city
from ._report import Report

TARGET_P99_MS = 50.0


@contextmanager
def fresh_database(keep: bool = False) -> Iterator[str]:
    server = os.environ.get("STADTPULS_BENCH_DATABASE_URL") or os.environ.get("STADTPULS_TEST_DATABASE_URL")
    embedded = None
    if not server:
        if port_open("127.0.0.1", 5432):
            server = "postgresql://postgres@127.0.0.1:5432/postgres"
        else:
            embedded = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "data")
            server = embedded.start()
    name = f"stadtpuls_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    url = urlunsplit(urlsplit(server)._replace(path="/" + name))
    try:
        yield url
    finally:
        if not keep:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(
                    psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name))
                )
        if embedded is not None:
            embedded.stop()


@contextmanager
def api_server(url: str, startup_timeout: float = 30.0, **env: str) -> Iterator[str]:
    port = free_port()
    environ = {
        **os.environ,
        "STADTPULS_DATABASE_URL": url,
        "STADTPULS_RATE_LIMIT_PER_MINUTE": "0",
        "STADTPULS_LOG_LEVEL": "WARNING",
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "stadtpuls.cli", "api", "--host", "127.0.0.1", "--port", str(port)], env=environ
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                # /health reads the newest uplink: seconds on a large database of a loaded machine
                if httpx.get(base + "/health", timeout=max(1.0, startup_timeout / 6)).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the API did not start")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Connection:
    """One keep-alive HTTP/1.1 connection with the least client work per request, so that the load generator
    leaves the CPU to the server (httpx costs about a millisecond of CPU per request)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, base: str) -> _Connection:
        parts = urlsplit(base)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        match = _LENGTH.search(head)
        if match is None:
            raise RuntimeError("response without Content-Length")
        await self.reader.readexactly(int(match.group(1)))
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


async def _load(base: str, paths: list[str], rate: float, concurrency: int, duration: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    conns = [await _Connection.open(base) for _ in range(concurrency)]
    for k, c in enumerate(conns):  # warm every connection
        await c.get(paths[k % len(paths)])
    start = time.perf_counter() + 0.2
    total = int(rate * duration) if rate > 0 else None

    async def worker(conn: _Connection) -> None:
        nonlocal counter, errors
        while True:
            i = counter
            counter += 1
            if total is not None:
                if i >= total:
                    return
                scheduled = start + i / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                scheduled = time.perf_counter()
                if scheduled - start > duration:
                    return
            status = await conn.get(paths[i % len(paths)])
            latencies.append(time.perf_counter() - scheduled)
            if status != 200:
                errors += 1

    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors,
        "rps": n / elapsed,
        "p50_ms": 1000 * latencies[n // 2],
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))],
    }


def load_process(base: str, paths: list[str], rate: float, concurrency: int, duration: float) -> dict[str, Any]:
    """Runs the load generator in its own process and returns its figures."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.api",
            "--load",
            base,
            "--paths",
            ",".join(paths),
            "--rate",
            str(rate),
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration * 10 + 120,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def measure(base: str, paths: list[str], args: argparse.Namespace) -> dict[str, float]:
    open_runs = [load_process(base, paths, args.rate, args.concurrency, args.duration) for _ in range(args.runs)]
    closed = [load_process(base, paths, 0, args.concurrency, args.duration / 2) for _ in range(args.runs)]
    return {
        "rps": _median(open_runs, "rps"),
        "p50_ms": _median(open_runs, "p50_ms"),
        "p99_ms": _median(open_runs, "p99_ms"),
        "errors": sum(r["errors"] for r in open_runs + closed),
        "max_rps": _median(closed, "rps"),
        "closed_p99_ms": _median(closed, "p99_ms"),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--city", default="medium", choices=("small", "medium", "large"))
    p.add_argument("--rate", type=float, default=500.0, help="offered requests/s of the open-loop runs")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--duration", type=float, default=8.0, help="seconds per open-loop run")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--no-feeds", action="store_true", help="skip the open-data feeds")
    p.add_argument("--towns", type=int, default=1, help="split the city into this many towns (tenants)")
    p.add_argument("--load", help=argparse.SUPPRESS)
    p.add_argument("--paths", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.load:
        print(
            json.dumps(asyncio.run(_load(args.load, args.paths.split(","), args.rate, args.concurrency, args.duration)))
        )
        return 0
    with fresh_database(args.keep) as url:
        migrate(url)
        t0 = time.perf_counter()
        counts = seed_city(url, days=args.days, size=args.city)
        print(
            f"seeded {args.days} days of a {args.city} city in {time.perf_counter() - t0:.1f} s: "
            + ", ".join(f"{k}={v:,}" for k, v in counts.items())
        )
        towns = split_into_towns(url, args.towns) if args.towns > 1 else {}
        with psycopg.connect(url) as conn:
            lots = [r[0] for r in conn.execute("SELECT site_id FROM sites WHERE kind = 'lot' ORDER BY 1")]
        paths = [
            "/api/v1/parking/lots",
            *(f"/api/v1/parking/lots/{lot}" for lot in lots[:3]),
            "/api/v1/parking/lots.geojson",
        ]
        print(
            f"load: {args.concurrency} clients in a separate process over {len(paths)} public parking paths, "
            f"{args.rate:.0f} req/s offered for {args.duration:.0f} s, median of {args.runs} runs"
        )
        figures = {}
        for label, env in (("stadtpuls (cached lots)", {}), ("baseline (no cache)", {"STADTPULS_API_CACHE_TTL": "0"})):
            with api_server(url, **env) as base:
                figures[label] = f = measure(base, paths, args)
            print(
                f"{label:<24} {f['rps']:7.0f} req/s achieved  p50 {f['p50_ms']:7.1f} ms  p99 {f['p99_ms']:7.1f} ms"
                f"  | closed loop {f['max_rps']:6.0f} req/s (p99 {f['closed_p99_ms']:.1f} ms)  errors {f['errors']}"
            )
        if towns:
            town_paths = prefixed_paths(towns)
            label = f"{len(towns)} towns (prefixed)"
            with api_server(url) as base:
                figures[label] = f = measure(base, town_paths, args)
            print(
                f"{label:<24} {f['rps']:7.0f} req/s achieved  p50 {f['p50_ms']:7.1f} ms  p99 {f['p99_ms']:7.1f} ms"
                f"  | closed loop {f['max_rps']:6.0f} req/s (p99 {f['closed_p99_ms']:.1f} ms)  errors {f['errors']}"
                f"  ({len(town_paths)} paths)"
            )
        if not args.no_feeds:
            measure_feeds(url, args)
        ours, base_f = figures["stadtpuls (cached lots)"], figures["baseline (no cache)"]
        print(
            f"ratio: max throughput {ours['max_rps'] / base_f['max_rps']:.1f}x the baseline, "
            f"p99 at {args.rate:.0f} req/s {base_f['p99_ms'] / ours['p99_ms']:.1f}x lower"
        )
        met = ours["p99_ms"] < TARGET_P99_MS and ours["rps"] >= 0.95 * args.rate and ours["errors"] == 0
        report = Report("api")
        report.figure("p99", ours["p99_ms"], f"ms at {args.rate:.0f} req/s")
        report.figure("closed loop", ours["max_rps"], "req/s")
        report.target(f"p99 < {TARGET_P99_MS:.0f} ms at {args.rate:.0f} req/s, no errors", met)
        if towns:
            f = figures[f"{len(towns)} towns (prefixed)"]
            report.figure(f"p99 of {len(towns)} towns", f["p99_ms"], f"ms at {args.rate:.0f} req/s")
            report.target(
                f"{len(towns)} towns: p99 < {TARGET_P99_MS:.0f} ms at {args.rate:.0f} req/s", _met(f, args.rate)
            )
        report.write()
    return 0


def split_into_towns(url: str, n: int) -> dict[str, list[str]]:
    """Tenants ``town-1`` .. ``town-n``, each given the sites of a share of the city (a site goes with its parent:
    spaces with their lot, stops and buses with their line) and the devices on them; the lots of each town."""
    slugs = [f"town-{k + 1}" for k in range(n)]
    with psycopg.connect(url) as conn:
        for slug in slugs:
            conn.execute("INSERT INTO tenants (slug, name) VALUES (%s, %s)", (slug, f"Town {slug[5:]}"))
        conn.execute(
            "UPDATE sites SET tenant = 'town-' || (abs(hashtext(coalesce(parent_id, site_id))) %% %s + 1)", (n,)
        )
        conn.execute("UPDATE devices d SET tenant = s.tenant FROM sites s WHERE s.site_id = d.site_id")
        rows = conn.execute("SELECT tenant, site_id FROM sites WHERE kind = 'lot' ORDER BY 2").fetchall()
    lots: dict[str, list[str]] = {slug: [] for slug in slugs}
    for tenant, lot in rows:
        lots[tenant].append(lot)
    return lots


def prefixed_paths(towns: dict[str, list[str]]) -> list[str]:
    """Every town's public routes, interleaved town by town (so consecutive requests go to different towns)."""
    per_town = [
        [
            f"/api/v1/t/{slug}/parking/lots",
            *(f"/api/v1/t/{slug}/parking/lots/{lot}" for lot in lots[:1]),
            f"/api/v1/t/{slug}/parking/lots.geojson",
            f"/api/v1/t/{slug}/buses/lines",
            f"/t/{slug}/api/public/v3/parking-sites",
            f"/t/{slug}/api/public/gtfs-rt/vehicle-positions.pb",
        ]
        for slug, lots in towns.items()
    ]
    mixed = [path for group in zip_longest(*per_town) for path in group if path is not None]
    return [*mixed, "/api/v1/district"]


def _met(f: dict[str, float], rate: float) -> bool:
    return f["p99_ms"] < TARGET_P99_MS and f["rps"] >= 0.95 * rate and f["errors"] == 0


def measure_feeds(url: str, args: argparse.Namespace) -> None:
    """Each open-data feed alone at the offered rate on the cached API."""
    with psycopg.connect(url) as conn:
        lat, lon = conn.execute("SELECT avg(lat), avg(lon) FROM sites WHERE kind = 'lot'").fetchone()
        bins = [  # the fill-level Datastreams (ObservedProperty 1) of three bins
            r[0] * 100 + 1
            for r in conn.execute(
                "SELECT d.public_id FROM devices d JOIN sites s USING (site_id) WHERE s.kind = 'bin' ORDER BY 1 LIMIT 3"
            )
        ]
    feeds = {
        "ParkAPI v3": [
            "/api/public/v3/parking-sites",
            f"/api/public/v3/parking-sites?lat={lat:.5f}&lon={lon:.5f}&radius=3000",
            "/api/public/v3/parking-spots?limit=100",
        ],
        "DATEX II": ["/api/public/datex2/json"],
        "GTFS-Realtime": ["/api/public/gtfs-rt/vehicle-positions.pb"],
        "SensorThings": [
            f"/sta/v1.1/Datastreams({ds})/Observations?$top=100&$orderby=phenomenonTime%20desc" for ds in bins
        ],
        "NGSI-LD": ["/ngsi-ld/v1/entities?type=OffStreetParking", "/ngsi-ld/v1/entities?type=WasteContainer&limit=100"],
    }
    with api_server(url) as base:
        for label, feed_paths in feeds.items():
            f = measure(base, feed_paths, args)
            print(
                f"feed {label:<19} {f['rps']:7.0f} req/s achieved  p50 {f['p50_ms']:7.1f} ms  p99 "
                f"{f['p99_ms']:7.1f} ms  | closed loop {f['max_rps']:6.0f} req/s  errors {f['errors']}  "
                f"target {'met' if _met(f, args.rate) else 'NOT met'}"
            )


if __name__ == "__main__":
    sys.exit(main())
