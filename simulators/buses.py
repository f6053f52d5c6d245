"""Buses: vehicles shuttle along their line from end to end during service hours, staggered by the headway.
At each stop passengers alight (each choosing a destination among the stops ahead, weighted towards the centre)
and board (Poisson demand following the rush hours, limited by the vehicle's capacity).

Each vehicle carries an ESP32-Paxcounter with GPS that reports the people on board and its position (fPort 1,
17 bytes) just before the doors close, and a Milesight VS133 door counter that reports the passengers in and out
of both doors during the stop (and its running totals) when the doors close.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from .city import City, stream
from .geo import distance_m
from .readings import ReadingBatch
from .timebase import US, from_us, to_us

__all__ = ["DEMAND", "SERVICE", "BusModel"]

#: Boardings per stop visit at a stop of weight 1, by local hour: weekday, Saturday, Sunday.
DEMAND = (
    (
        0.1,
        0.05,
        0.05,
        0.05,
        0.3,
        1.2,
        3.5,
        5.0,
        4.5,
        3.0,
        2.5,
        2.7,
        3.0,
        3.0,
        3.2,
        4.0,
        4.7,
        4.5,
        3.5,
        2.5,
        1.7,
        1.2,
        0.8,
        0.4,
    ),
    (
        0.3,
        0.2,
        0.1,
        0.05,
        0.1,
        0.3,
        0.8,
        1.5,
        2.2,
        2.8,
        3.0,
        3.1,
        3.0,
        2.9,
        2.7,
        2.5,
        2.4,
        2.2,
        2.0,
        1.6,
        1.3,
        1.1,
        0.8,
        0.5,
    ),
    (
        0.4,
        0.3,
        0.2,
        0.1,
        0.05,
        0.1,
        0.3,
        0.6,
        1.0,
        1.4,
        1.7,
        1.9,
        2.0,
        2.0,
        1.9,
        1.8,
        1.7,
        1.6,
        1.4,
        1.1,
        0.9,
        0.7,
        0.5,
        0.3,
    ),
)
#: Service hours (local) on weekdays, Saturdays and Sundays.
SERVICE = ((time(5, 0), time(23, 30)), (time(6, 0), time(23, 30)), (time(7, 0), time(23, 0)))


@dataclass
class _Line:
    line_id: str
    stop_ids: list[str]
    lat: np.ndarray
    lon: np.ndarray
    gap_m: np.ndarray  # distance to the next stop
    weight: np.ndarray  # passenger attraction of each stop


@dataclass
class _Vehicle:
    line: _Line
    offset_us: int  # stagger after the start of service
    capacity: int
    pax_dev: int
    door_dev: int
    stop: int = 0
    direction: int = 1
    onboard: int = 0
    arrive_us: int = 0
    totals: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # in/out of door 1, in/out of door 2


class BusModel:
    def __init__(self, city: City, seed: int, start_us: int, tz: ZoneInfo) -> None:
        self.rng = rng = stream(seed, "buses")
        self.tz = tz
        radius = city.size.radius_m
        devs: dict[tuple[str, str], int] = {}
        for d in city.devices_on("vehicle"):
            devs[(d.site_id, d.model.key)] = d.index
        self.vehicles: list[_Vehicle] = []
        self.vehicle_ids: list[str] = []
        for line in city.sites_of("line"):
            stops = sorted(
                (s for s in city.sites if s.kind == "stop" and s.parent_id == line.site_id), key=lambda s: s.seq or 0
            )
            lat = np.array([s.lat for s in stops], dtype=np.float64)
            lon = np.array([s.lon for s in stops], dtype=np.float64)
            gap = distance_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
            to_center = distance_m(lat, lon, city.center[0], city.center[1])
            weight = 0.5 + 1.5 * np.exp(-to_center / (0.4 * radius))
            ln = _Line(line.site_id, [s.site_id for s in stops], lat, lon, gap, weight)
            vehicles = [s for s in city.sites if s.kind == "vehicle" and s.parent_id == line.site_id]
            cycle_us = int(2 * (len(stops) - 1) * 150 * US + 2 * 360 * US)
            for v, site in enumerate(vehicles):
                self.vehicles.append(
                    _Vehicle(
                        ln,
                        v * cycle_us // max(len(vehicles), 1),
                        site.capacity or 85,
                        devs[(site.site_id, "paxcounter")],
                        devs[(site.site_id, "vs133")],
                        totals=[int(x) for x in rng.integers(1000, 200000, 4)],
                    )
                )
                self.vehicle_ids.append(site.site_id)
        for veh in self.vehicles:
            veh.arrive_us = self._next_service(start_us) + veh.offset_us

    def _service(self, day: date) -> tuple[int, int]:
        kind = 0 if day.weekday() < 5 else day.weekday() - 4
        first, last = SERVICE[kind]
        return (to_us(datetime.combine(day, first, tzinfo=self.tz)), to_us(datetime.combine(day, last, tzinfo=self.tz)))

    def _next_service(self, t_us: int) -> int:
        """Start of service at or after ``t_us`` (or ``t_us`` itself during service hours)."""
        day = from_us(t_us).astimezone(self.tz).date()
        for k in range(3):
            s, e = self._service(day + timedelta(days=k))
            if t_us < e:
                return max(s, t_us)
        return t_us

    def _demand(self, t_us: int) -> float:
        local = from_us(t_us).astimezone(self.tz)
        kind = 0 if local.weekday() < 5 else local.weekday() - 4
        h = local.hour + local.minute / 60
        row = DEMAND[kind]
        h0 = int(h) % 24
        return row[h0] + (row[(h0 + 1) % 24] - row[h0]) * (h - int(h))

    def step(self, w0: int, w1: int) -> list[ReadingBatch]:
        rng = self.rng
        pax: list[tuple[Any, ...]] = []
        door: list[tuple[Any, ...]] = []
        for v in self.vehicles:
            while v.arrive_us < w1:
                ln = v.line
                n = len(ln.stop_ids)
                k = v.stop
                last = (k == n - 1) if v.direction > 0 else (k == 0)
                ahead = ln.weight[k + 1 :] if v.direction > 0 else ln.weight[:k][::-1]
                out = v.onboard if last else int(rng.binomial(v.onboard, ln.weight[k] / (ln.weight[k] + ahead.sum())))
                room = v.capacity - (v.onboard - out)
                board = 0 if last else min(room, int(rng.poisson(self._demand(v.arrive_us) * ln.weight[k])))
                dwell = float(np.clip(12 + 1.8 * (board + out) + rng.normal(0, 3), 10, 120))
                close = v.arrive_us + int(dwell * US) + int(rng.integers(0, US))
                if close >= w1:
                    break  # this stop ends in the next window; decided again there
                v.onboard += board - out
                in1 = int(rng.binomial(board, 0.7))
                out1 = int(rng.binomial(out, 0.3))
                counts = (in1, out1, board - in1, out - out1)
                v.totals = [a + b for a, b in zip(v.totals, counts, strict=True)]
                gps = rng.normal(0, 4.0, 2) / 111_320
                wifi = int(rng.binomial(v.onboard, 0.6))
                pax.append(
                    (
                        close - 3 * US,
                        v.pax_dev,
                        wifi,
                        v.onboard - wifi,
                        ln.lat[k] + gps[0],
                        ln.lon[k] + gps[1] / math.cos(math.radians(ln.lat[k])),
                        int(rng.integers(6, 13)),
                        float(rng.uniform(0.7, 2.0)),
                        int(rng.integers(105, 126)),
                        ln.stop_ids[k],
                        v.onboard,
                    )
                )
                door.append((close, v.door_dev, *counts, *v.totals, ln.stop_ids[k], v.onboard))
                self._advance(v, close, last)
        return self._batches(pax, door)

    def _advance(self, v: _Vehicle, close: int, last: bool) -> None:
        rng = self.rng
        ln = v.line
        if last:
            v.direction = -v.direction
            nxt = close + int(rng.uniform(240, 480) * US)
            day = from_us(close).astimezone(self.tz).date()
            _, end = self._service(day)
            if nxt >= end:  # off to the depot; back at the next start of service
                v.onboard = 0
                nxt = self._next_service(end + 3600 * US) + v.offset_us
            v.arrive_us = nxt
            return
        k = v.stop
        k2 = k + v.direction
        gap = ln.gap_m[min(k, k2)]
        hour = from_us(close).astimezone(self.tz).hour
        rush = hour in (7, 8, 16, 17)
        speed = (17 if rush else 24) / 3.6 * float(rng.lognormal(0, 0.12))
        v.stop = k2
        v.arrive_us = close + int(max(40.0, gap / speed) * US)

    def _batches(self, pax: list[tuple[Any, ...]], door: list[tuple[Any, ...]]) -> list[ReadingBatch]:
        out = []
        if pax:
            t, dev, wifi, ble, lat, lon, sats, hdop, alt, stop, onboard = (np.array(c) for c in zip(*pax, strict=True))
            lat = np.round(lat, 6)
            lon = np.round(lon, 6)
            hdop = np.round(hdop, 2)
            fields = {
                "wifi": wifi,
                "ble": ble,
                "latitude": lat,
                "longitude": lon,
                "sats": sats,
                "hdop": hdop,
                "altitude": alt,
            }
            q = {"pax_count": (wifi + ble).astype(np.float64)}
            out.append(
                ReadingBatch(
                    "opensource/esp32-paxcounter",
                    1,
                    t.astype(np.int64),
                    dev.astype(np.int64),
                    fields,
                    q,
                    {"stop_id": stop, "lat": lat, "lon": lon, "onboard": onboard},
                )
            )
        if door:
            t, dev, in1, out1, in2, out2, ti1, to1, ti2, to2, stop, onboard = (
                np.array(c) for c in zip(*door, strict=True)
            )
            fields = {
                "line_1.total_in": ti1,
                "line_1.total_out": to1,
                "line_1.period_in": in1,
                "line_1.period_out": out1,
                "line_2.total_in": ti2,
                "line_2.total_out": to2,
                "line_2.period_in": in2,
                "line_2.period_out": out2,
            }
            q = {"pax_in": (in1 + in2).astype(np.float64), "pax_out": (out1 + out2).astype(np.float64)}
            out.append(
                ReadingBatch(
                    "milesight-iot/vs133",
                    85,
                    t.astype(np.int64),
                    dev.astype(np.int64),
                    fields,
                    q,
                    {"stop_id": stop, "onboard": onboard},
                )
            )
        return out
