"""Parking: lots with one sensor per space; cars arrive and leave following daily and weekly occupancy curves
(busy Saturday mornings in the centre, commuters at the park-and-ride, residents at night). Sensors report every
change of state and, when nothing happened for their heartbeat interval, a heartbeat with the same state.

Each space flips minute by minute: a free space is taken with rate ``p/tau``, an occupied one is left with rate
``(1 - p)/tau``, so occupancy relaxes towards the lot's target ``p(t)`` with time constant ``tau``.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np

from .city import City, stream
from .faults import FaultConfig
from .health import Health, HealthProfile
from .readings import ReadingBatch
from .timebase import US, local_week_hours
from .weather import Weather

__all__ = ["CURVES", "ParkingModel"]

_C = {
    "center": (
        (
            0.10,
            0.08,
            0.07,
            0.07,
            0.08,
            0.12,
            0.25,
            0.45,
            0.60,
            0.70,
            0.76,
            0.80,
            0.80,
            0.76,
            0.72,
            0.72,
            0.75,
            0.72,
            0.60,
            0.45,
            0.35,
            0.25,
            0.18,
            0.12,
        ),
        (
            0.12,
            0.10,
            0.08,
            0.08,
            0.08,
            0.10,
            0.15,
            0.35,
            0.65,
            0.88,
            0.95,
            0.96,
            0.92,
            0.85,
            0.75,
            0.65,
            0.55,
            0.45,
            0.38,
            0.32,
            0.28,
            0.22,
            0.18,
            0.14,
        ),
        (
            0.12,
            0.10,
            0.08,
            0.08,
            0.08,
            0.08,
            0.08,
            0.10,
            0.14,
            0.20,
            0.28,
            0.32,
            0.34,
            0.34,
            0.32,
            0.30,
            0.28,
            0.25,
            0.22,
            0.20,
            0.18,
            0.15,
            0.13,
            0.12,
        ),
    ),
    "park_ride": (
        (
            0.04,
            0.03,
            0.03,
            0.03,
            0.05,
            0.15,
            0.45,
            0.80,
            0.92,
            0.93,
            0.93,
            0.92,
            0.90,
            0.88,
            0.85,
            0.75,
            0.55,
            0.35,
            0.20,
            0.12,
            0.08,
            0.06,
            0.05,
            0.04,
        ),
        (
            0.03,
            0.03,
            0.03,
            0.03,
            0.03,
            0.04,
            0.06,
            0.12,
            0.22,
            0.32,
            0.38,
            0.40,
            0.38,
            0.34,
            0.30,
            0.25,
            0.18,
            0.12,
            0.08,
            0.06,
            0.05,
            0.04,
            0.03,
            0.03,
        ),
        (
            0.02,
            0.02,
            0.02,
            0.02,
            0.02,
            0.02,
            0.03,
            0.06,
            0.10,
            0.15,
            0.18,
            0.20,
            0.20,
            0.18,
            0.16,
            0.13,
            0.10,
            0.07,
            0.05,
            0.04,
            0.03,
            0.03,
            0.02,
            0.02,
        ),
    ),
    "residential": (
        (
            0.92,
            0.93,
            0.93,
            0.93,
            0.92,
            0.88,
            0.75,
            0.58,
            0.50,
            0.48,
            0.47,
            0.47,
            0.48,
            0.50,
            0.52,
            0.56,
            0.64,
            0.74,
            0.82,
            0.86,
            0.89,
            0.90,
            0.91,
            0.92,
        ),
        (
            0.93,
            0.94,
            0.94,
            0.94,
            0.94,
            0.93,
            0.92,
            0.88,
            0.80,
            0.72,
            0.66,
            0.64,
            0.66,
            0.68,
            0.70,
            0.72,
            0.76,
            0.80,
            0.84,
            0.87,
            0.89,
            0.91,
            0.92,
            0.93,
        ),
        (
            0.94,
            0.95,
            0.95,
            0.95,
            0.95,
            0.95,
            0.94,
            0.93,
            0.90,
            0.84,
            0.78,
            0.76,
            0.76,
            0.78,
            0.78,
            0.78,
            0.80,
            0.83,
            0.86,
            0.89,
            0.91,
            0.92,
            0.93,
            0.94,
        ),
    ),
}
#: Occupancy target by profile over the 168 hours of a week (Monday 00:00 first).
CURVES = {k: np.array(v[0] * 5 + v[1] + v[2], dtype=np.float64) for k, v in _C.items()}
TAU_H = {"center": 0.6, "park_ride": 1.0, "residential": 2.5}
MINUTE = 60 * US
HEALTH = HealthProfile(v_full=3.5, v_cutoff=2.9, drain_per_day=0.0002, drain=0.015, silent=0.0001)


class ParkingModel:
    def __init__(
        self, city: City, seed: int, start_us: int, tz: ZoneInfo, weather: Weather, faults: FaultConfig | None = None
    ) -> None:
        faults = faults or FaultConfig()
        self.rng = rng = stream(seed, "parking")
        self.tz = tz
        self.weather = weather
        lots = city.sites_of("lot")
        self.lot_ids = [lot.site_id for lot in lots]
        lot_index = {lot.site_id: k for k, lot in enumerate(lots)}
        self.curves = np.stack([CURVES[str(lot.params.get("profile", "center"))] for lot in lots])
        self.tau_h = np.array([TAU_H[str(lot.params.get("profile", "center"))] for lot in lots])
        spaces = city.sites_of("space")
        by_site = {d.site_id: d for d in city.devices_on("space")}
        self.devices = [by_site[s.site_id] for s in spaces]
        self.space_ids = [s.site_id for s in spaces]
        self.lot = np.array([lot_index[s.parent_id or ""] for s in spaces], dtype=np.int64)
        n = self.n = len(spaces)
        self.dev = np.array([d.index for d in self.devices], dtype=np.int64)
        self.model = np.array([d.model.key for d in self.devices])
        self.weight = rng.lognormal(0.0, 0.3, n)
        self._day_factor: dict[tuple[int, int], float] = {}
        p0 = self._target(np.array([start_us], dtype=np.int64))[0]
        self.occupied = rng.random(n) < p0[self.lot]
        self.since = start_us - rng.integers(0, 240, n) * MINUTE
        self.interval = np.array([d.report_interval_s for d in self.devices], dtype=np.int64) * US
        self.last_tx = start_us - (rng.random(n) * self.interval).astype(np.int64)
        self.temp_offset = rng.normal(1.0, 0.8, n)
        self.health = Health.of_model("parking", HEALTH, n, seed, start_us, faults)
        self.changes = 0

    def _target(self, t: np.ndarray) -> np.ndarray:
        """Target occupancy of every lot at each instant: shape (len(t), lots)."""
        h = local_week_hours(t, self.tz)
        h0 = np.floor(h).astype(np.int64) % 168
        f = h - np.floor(h)
        c = self.curves[:, h0] * (1 - f) + self.curves[:, (h0 + 1) % 168] * f
        day = int(t[0] // (86400 * US))
        factor = np.array([self._factor(k, day) for k in range(len(self.lot_ids))])
        returned: np.ndarray = np.clip(c.T * factor, 0.01, 0.99)
        return returned

    def _factor(self, lot: int, day: int) -> float:
        key = (lot, day)
        if key not in self._day_factor:
            self._day_factor[key] = float(self.rng.normal(1.0, 0.06))
        return self._day_factor[key]

    def step(self, w0: int, w1: int) -> list[ReadingBatch]:
        rng = self.rng
        n = self.n
        every = np.arange(n)
        self.health.advance(w0, w1)
        parts: list[tuple[np.ndarray, ...]] = []  # (t, space, is change, state reported, previous duration)
        minutes = np.arange(w0, w1, MINUTE, dtype=np.int64)
        targets = self._target(minutes)[:, self.lot]
        tau = self.tau_h[self.lot]
        for step, m0 in enumerate(minutes.tolist()):
            m1 = min(m0 + MINUTE, w1)
            dt_h = (m1 - m0) / (3600 * US)
            p = targets[step]
            rate = np.where(self.occupied, (1 - p) / tau, p / tau * self.weight)
            flip = rng.random(n) < -np.expm1(-rate * dt_h)
            tc = m0 + (rng.random(n) * (m1 - m0)).astype(np.int64)
            alive = self.health.alive(every, np.full(n, m0))
            due = np.maximum(self.last_tx + self.interval, m0)
            hb = np.flatnonzero(alive & (due < m1) & (~flip | (due < tc)))
            if len(hb):
                parts.append(
                    (due[hb], hb, np.zeros(len(hb), dtype=bool), self.occupied[hb], np.zeros(len(hb), dtype=np.int64))
                )
                self.last_tx[hb] = due[hb]
            ch = np.flatnonzero(flip)
            if len(ch):
                self.occupied[ch] = ~self.occupied[ch]
                self.changes += len(ch)
                seen = ch[alive[ch]]
                parts.append(
                    (
                        tc[seen],
                        seen,
                        np.ones(len(seen), dtype=bool),
                        self.occupied[seen],
                        (tc[seen] - self.since[seen]) // MINUTE,
                    )
                )
                self.last_tx[seen] = tc[seen]
                self.since[ch] = tc[ch]
        if not parts:
            return []
        t, i, change, occ, dur = (np.concatenate(c) for c in zip(*parts, strict=True))
        return self._readings(t, i, change, occ, dur)

    def _readings(
        self, t: np.ndarray, i: np.ndarray, change: np.ndarray, occ: np.ndarray, dur: np.ndarray
    ) -> list[ReadingBatch]:
        rng = self.rng
        volts = self.health.voltage(i, t)
        temp = self.weather.temperature(t) + self.temp_offset[i] + rng.normal(0, 0.3, len(t))
        lot = np.array(self.lot_ids, dtype=object)[self.lot[i]]
        out = []
        for key in ("nps405", "tps110", "r719a"):
            for is_change in (True, False):
                m = (self.model[i] == key) & (change == is_change)
                if not m.any():
                    continue
                o = occ[m]
                q: dict[str, np.ndarray] = {"occupied": o}
                if key == "nps405" and is_change:
                    codec, port = "nwave/nps405", 1
                    fields: dict[str, np.ndarray] = {"occupied": o, "previous_state_duration": dur[m]}
                elif key == "nps405":
                    codec, port = "nwave/nps405", 2
                    code = np.clip(np.round((volts[m] * 1000 - 2500) / 4), 0, 255)
                    v = (2500 + 4 * code) / 1000
                    c = np.round(temp[m] * 2) / 2
                    fields = {"occupied": o, "battery_voltage": v, "temperature": c}
                    q.update(battery_v=v, temperature_c=c)
                elif key == "tps110":
                    codec, port = "bosch/tps110", 1 if is_change else 2
                    fields = {"occupied": o}
                    if not is_change:
                        c = np.round(temp[m])
                        fields["temperature"] = c
                        q["temperature_c"] = c
                else:
                    codec, port = "netvox/r719a", 6
                    v = np.round((volts[m] + 0.1) * 10) / 10  # a 3.6 V lithium cell
                    volt = np.array([f"{x:g}(low battery)" if x < 3.2 else f"{x:g}" for x in v.tolist()])
                    fields = {"Volt": volt, "CarOnOff": o.astype(np.int64)}
                    q["battery_v"] = v
                out.append(
                    ReadingBatch(
                        codec,
                        port,
                        t[m],
                        self.dev[i[m]],
                        fields,
                        q,
                        {"lot_id": lot[m], "event": np.full(m.sum(), "change" if is_change else "heartbeat")},
                    )
                )
        return out
