"""Fill a database with N days of a simulated city, fast: the simulator's registry (sites and devices) and readings
generated with numpy, written with COPY.

Parking spaces alternate between free and occupied with exponential dwell times that follow the hour of day, and
send a heartbeat every report interval; bins fill linearly with noise and are emptied when they pass 85-95 %;
buses count boardings and alightings at a stop every few minutes in service hours. Every reading also gets its raw
uplink row. Not the simulator's full model: enough volume and shape for API benchmarks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import yaml
from psycopg import sql

from stadtpuls import fleet
from stadtpuls.ingest.envelopes.keys import stored_keys
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.export import fleet_document

__all__ = ["seed_city"]

DAY = 86400.0


def _copy(conn: psycopg.Connection, table: str, columns: list[str], rows: Any) -> int:
    n = 0
    query = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(query) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _stamp(t: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(x, UTC) for x in t.tolist()]


def _parking(
    rng: np.random.Generator, devices: list[dict[str, Any]], t0: float, t1: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    devs, times, states = [], [], []
    for d in devices:
        interval = float(d["report_interval_s"] or 3600)
        n = int((t1 - t0) / 600) + 8
        dwell = rng.exponential(5400.0, n) + 120  # mean 1.5 h per state
        toggles = t0 + np.cumsum(dwell)
        toggles = toggles[toggles < t1]
        first = bool(rng.random() < 0.5)
        beats = np.arange(t0 + rng.random() * interval, t1, interval)
        t = np.concatenate([toggles, beats])
        kind = np.concatenate([np.ones(toggles.size, bool), np.zeros(beats.size, bool)])
        order = np.argsort(t, kind="stable")
        t, kind = t[order], kind[order]
        flips = np.cumsum(kind)
        occ = (flips % 2 == 1) ^ first
        devs.extend([d["dev_eui"]] * t.size)
        times.append(t)
        states.append(occ)
    return devs, np.concatenate(times), np.concatenate(states)


def _bins(
    rng: np.random.Generator, devices: list[dict[str, Any]], t0: float, t1: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    devs, times, fills = [], [], []
    for d in devices:
        interval = float(d["report_interval_s"] or 3600)
        t = np.arange(t0 + rng.random() * interval, t1, interval)
        rate = rng.uniform(4, 25) / DAY  # % per second
        level = np.empty(t.size)
        cur, limit = rng.uniform(0, 60), rng.uniform(85, 95)
        for i in range(t.size):
            cur += rate * interval
            if cur > limit:
                cur, limit = rng.uniform(0, 5), rng.uniform(85, 95)
            level[i] = cur
        devs.extend([d["dev_eui"]] * t.size)
        times.append(t)
        fills.append(np.clip(level + rng.normal(0, 1.0, t.size), 0, 100))
    return devs, np.concatenate(times), np.concatenate(fills)


def seed_city(
    url: str,
    *,
    days: int = 30,
    size: str = "medium",
    seed: int = 1,
    end: datetime | None = None,
    rollups: bool = True,
) -> dict[str, int]:
    """Import the city's registry into the (migrated) database at ``url`` and write ``days`` of readings ending at
    ``end`` (default now), then build the history rollups (unless ``rollups`` is False: the caller builds them).
    Returns row counts per table."""
    city = build_city(size, seed=seed)
    doc = fleet_document(city)
    rng = np.random.default_rng(seed)
    t1 = (end or datetime.now(UTC)).timestamp() - 60
    t0 = t1 - days * DAY
    counts: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        report = fleet.apply(conn, fleet.parse_text(yaml.safe_dump(doc), "yaml"))
        if report.errors:
            raise RuntimeError(f"registry import failed: {report.errors[:3]}")
        sites = {s["site_id"]: s for s in doc["sites"]}
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for d in doc["devices"]:
            by_kind.setdefault(sites[d["site_id"]]["kind"], []).append(d)
        site_of = {d["dev_eui"]: d["site_id"] for d in doc["devices"]}

        p_dev, p_t, p_occ = _parking(rng, by_kind.get("space", []), t0, t1)
        p_when = _stamp(p_t)
        counts["parking_events"] = _copy(
            conn,
            "parking_events",
            ["time", "dev_eui", "site_id", "lot_id", "occupied", "battery_v"],
            (
                (t, d, site_of[d], sites[site_of[d]]["parent_id"], bool(o), 3.6)
                for t, d, o in zip(p_when, p_dev, p_occ.tolist(), strict=True)
            ),
        )
        b_dev, b_t, b_fill = _bins(rng, by_kind.get("bin", []), t0, t1)
        b_when = _stamp(b_t)
        counts["bin_levels"] = _copy(
            conn,
            "bin_levels",
            ["time", "dev_eui", "site_id", "fill_pct", "distance_mm", "battery_v", "battery_pct"],
            (
                (t, d, site_of[d], f, 1200 - 10 * f, 3.6, 90.0)
                for t, d, f in zip(b_when, b_dev, b_fill.tolist(), strict=True)
            ),
        )
        v_rows = []
        stops_of: dict[str, list[str]] = {}
        for s in doc["sites"]:
            if s["kind"] == "stop":
                stops_of.setdefault(s["parent_id"], []).append(s["site_id"])
        for d in by_kind.get("vehicle", []):
            if "vs133" not in d["codec"]:
                continue
            vehicle = sites[d["site_id"]]
            line_stops = stops_of.get(vehicle["parent_id"], [])
            for day in range(days + 1):
                start = t0 - t0 % DAY + day * DAY + 5 * 3600
                ts = np.arange(start + rng.random() * 300, start + 17 * 3600, 180.0)
                ts = ts[(ts > t0) & (ts < t1)]
                for k, t in enumerate(ts.tolist()):
                    stop = line_stops[k % len(line_stops)] if line_stops else None
                    v_rows.append(
                        (
                            datetime.fromtimestamp(t, UTC),
                            d["dev_eui"],
                            vehicle["site_id"],
                            vehicle["parent_id"],
                            stop,
                            int(rng.poisson(3)),
                            int(rng.poisson(3)),
                            None,
                        )
                    )
        counts["passenger_counts"] = _copy(
            conn,
            "passenger_counts",
            ["time", "dev_eui", "site_id", "line_id", "stop_id", "pax_in", "pax_out", "pax_count"],
            v_rows,
        )
        up_dev = p_dev + b_dev
        up_when = p_when + b_when
        rssi = rng.normal(-105, 8, len(up_dev)).round(1).tolist()
        keys = stored_keys(np.frombuffer(rng.bytes(16 * len(up_dev)), np.uint8).reshape(-1, 16)).tolist()  # random
        counts["uplinks"] = _copy(
            conn,
            "uplinks",
            [
                "time",
                "dedup_key",
                "dev_eui",
                "f_cnt",
                "f_port",
                "payload",
                "rssi",
                "snr",
                "dr",
                "gateways",
                "lns",
                "received_at",
            ],
            (
                (t, k, d, i, 1, b"\x01\x02\x03", r, 5.0, 5, 1, "tts", t + timedelta(seconds=1))
                for i, (t, d, r, k) in enumerate(zip(up_when, up_dev, rssi, keys, strict=True))
            ),
        )
        if rollups:  # loaded past the writer: build the rollups as the migration does
            conn.execute("SELECT rollups_build()")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    counts["sites"] = len(doc["sites"])
    counts["devices"] = len(doc["devices"])
    return counts
