"""Waste bins: fill levels that rise with the waste type, the weekday, the hour and the location (with noise and
the odd bulky dump), fall when a truck empties the bin, and spill over when nobody comes in time; ultrasonic
sensors in the lids report the distance to the surface every hour.

Fill levels are in percent of the bin's span between ``depth_mm`` (empty) and ``full_mm`` (100 %). A level
above 100 % is an overflowing bin; it cannot rise above the sensor's blind zone under the lid.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np

from .city import City, stream
from .collection import FixedSchedule, Schedule, planning_days, visit_times
from .faults import FaultConfig
from .health import Health, HealthProfile
from .readings import ReadingBatch, periodic_times
from .timebase import HOUR_US, local_date, local_week_hours
from .weather import Weather

__all__ = ["BLIND_MM", "RATES", "WasteModel"]

#: Mean fill in percent per day at an average location, by waste type.
RATES = {"residual": 7.0, "paper": 5.0, "packaging": 7.5, "organic": 7.0, "glass": 3.0}
AREA = {"center": 1.5, "residential": 1.0, "island": 0.9}
WEEKDAY = {  # Monday .. Sunday
    "center": (1.1, 1.0, 1.0, 1.0, 1.1, 1.2, 0.6),
    "residential": (1.1, 0.95, 0.95, 0.95, 1.0, 1.2, 1.25),
    "island": (0.9, 0.9, 0.9, 0.9, 1.0, 1.4, 1.1),
}
_HOURLY = np.array(
    [
        0.1,
        0.05,
        0.05,
        0.05,
        0.1,
        0.3,
        0.8,
        1.4,
        1.5,
        1.3,
        1.2,
        1.2,
        1.3,
        1.2,
        1.1,
        1.2,
        1.4,
        1.7,
        1.8,
        1.7,
        1.4,
        1.0,
        0.6,
        0.3,
    ]
)
HOURLY = _HOURLY / _HOURLY.mean()
BLIND_MM = 60  # the sensors cannot see closer than this
HEALTH = HealthProfile(v_full=3.65, v_cutoff=3.0, drain_per_day=0.0004, drain=0.02, silent=0.0002)


class WasteModel:
    def __init__(
        self,
        city: City,
        seed: int,
        start_us: int,
        tz: ZoneInfo,
        weather: Weather,
        schedule: Schedule | None = None,
        service_days: Sequence[int] = (0, 1, 2, 3, 4),
        faults: FaultConfig | None = None,
    ) -> None:
        faults = faults or FaultConfig()
        rng = stream(seed, "waste")
        self.rng = rng
        self.tz = tz
        self.weather = weather
        self.service_days = tuple(service_days)
        self.sites = city.sites_of("bin")
        by_site = {d.site_id: d for d in city.devices_on("bin")}
        self.devices = [by_site[s.site_id] for s in self.sites]
        n = self.n = len(self.sites)
        self.index = {s.site_id: i for i, s in enumerate(self.sites)}
        self.dev = np.array([d.index for d in self.devices], dtype=np.int64)
        self.model = np.array([d.model.key for d in self.devices])
        self.depth = np.array([s.depth_mm for s in self.sites], dtype=np.float64)
        self.full = np.array([s.full_mm for s in self.sites], dtype=np.float64)
        self.span = self.depth - self.full
        self.cap = (self.depth - BLIND_MM) / self.span * 100.0
        areas = [str(s.params.get("area", "residential")) for s in self.sites]
        self.weekday = np.array([WEEKDAY[a] for a in areas])
        self.type_rate = np.array(
            [RATES[s.waste_type or "residual"] * AREA[a] for s, a in zip(self.sites, areas, strict=True)]
        )
        self.organic = np.array([s.waste_type == "organic" for s in self.sites])
        self.location = np.clip(rng.lognormal(0.0, 0.45, n), 0.35, 3.0)
        self.rate = self.type_rate * self.location  # percent per day on an average weekday
        self.level = np.minimum(95.0, self.rate * rng.uniform(0, 7, n))
        self.tilt_angle = rng.integers(0, 4, n)
        self.temp_offset = np.where(self.organic, 3.0, 1.5) + rng.normal(0, 0.5, n)
        self.interval = np.array([d.report_interval_s for d in self.devices], dtype=np.int64) * 1_000_000
        self.phase = (rng.random(n) * self.interval).astype(np.int64)
        self.health = Health.of_model("waste", HEALTH, n, seed, start_us, faults)
        self.echo_rate = faults.device_rate("echoes", 0.003)
        self.schedule: Schedule = schedule or FixedSchedule(self.sites, self.rate * 7, city.center, self.service_days)
        self.pending: list[tuple[int, int]] = []  # (instant, bin index) of announced pickups
        self.pickups: list[tuple[int, str]] = []
        self.overflow_days: set[tuple[str, date]] = set()

    # --- collection -------------------------------------------------------------------------------------------

    def _plan(self, w0: int, w1: int) -> None:
        for day, at in planning_days(w0, w1, self.tz, self.service_days):
            order = [self.index[s] for s in self.schedule(day, at) if s in self.index]
            times = visit_times(day, self.tz, len(order))
            self.pending.extend(zip(times.tolist(), order, strict=True))
        self.pending.sort()

    def _due(self, w1: int) -> tuple[np.ndarray, np.ndarray]:
        """Pickups before ``w1`` (one per bin and window: a second visit within the hour finds it empty)."""
        tp = np.full(self.n, -1, dtype=np.int64)
        keep = []
        for at, i in self.pending:
            if at < w1:
                if tp[i] < 0:
                    tp[i] = at
                    self.pickups.append((at, self.sites[i].site_id))
            else:
                keep.append((at, i))
        self.pending = keep
        return tp, tp >= 0

    # --- one window ---------------------------------------------------------------------------------------

    def step(self, w0: int, w1: int) -> list[ReadingBatch]:
        self._plan(w0, w1)
        rng = self.rng
        n = self.n
        mid = np.array([(w0 + w1) // 2], dtype=np.int64)
        week_h = float(local_week_hours(mid, self.tz)[0])
        day, hour = int(week_h // 24), int(week_h % 24)
        doy = (w0 / (86400e6)) % 365.25
        season = np.where(self.organic, 1 + 0.35 * np.cos(2 * np.pi * (doy - 200) / 365.25), 1.0)
        hours = (w1 - w0) / HOUR_US
        inc = self.rate / 24 * hours * self.weekday[:, day] * HOURLY[hour] * season * rng.gamma(2.0, 0.5, n)
        bulky = rng.random(n) < 0.002 * hours
        inc = inc + np.where(bulky, rng.uniform(5, 20, n), 0.0)
        residual = rng.uniform(0, 3, n)
        tp, picked = self._due(w1)
        frac_p = np.where(picked, (tp - w0) / (w1 - w0), 1.0)

        def level_at(t: np.ndarray, i: np.ndarray) -> np.ndarray:
            f = (t - w0) / (w1 - w0)
            before = self.level[i] + inc[i] * f
            after = residual[i] + inc[i] * (f - frac_p[i])
            returned: np.ndarray = np.minimum(np.where(picked[i] & (f >= frac_p[i]), after, before), self.cap[i])
            return returned

        # readings
        self.health.advance(w0, w1)
        t, i = periodic_times(w0, w1, self.interval, self.phase, rng)
        alive = self.health.alive(i, t)
        t, i = t[alive], i[alive]
        true_level = level_at(t, i)
        batches = self._readings(t, i, true_level)

        # end of window: overflow bookkeeping, new levels
        peak = np.where(picked, np.maximum(self.level + inc * frac_p, residual + inc * (1 - frac_p)), self.level + inc)
        end = np.where(picked, residual + inc * (1 - frac_p), self.level + inc)
        self.level = np.minimum(end, self.cap)
        over = np.flatnonzero(np.minimum(peak, self.cap) >= 100.0)
        if over.size:
            today = local_date((w0 + w1) // 2, self.tz)
            self.overflow_days.update((self.sites[k].site_id, today) for k in over.tolist())
        return batches

    # --- sensors --------------------------------------------------------------------------------------------

    def _readings(self, t: np.ndarray, i: np.ndarray, level: np.ndarray) -> list[ReadingBatch]:
        rng = self.rng
        n = len(t)
        distance = self.depth[i] - level / 100.0 * self.span[i] + rng.normal(0, 4.0, n)
        glitch = rng.random(n) < self.echo_rate
        distance = np.where(glitch, rng.uniform(BLIND_MM, self.depth[i]), distance)
        distance = np.clip(np.round(distance), BLIND_MM, self.depth[i] + 20).astype(np.int64)
        fill = np.clip((self.depth[i] - distance) / self.span[i] * 100.0, 0.0, 100.0)
        own_fill = np.clip(np.round(fill), 0, 100).astype(np.int64)
        temp = np.round((self.weather.temperature(t) + self.temp_offset[i] + rng.normal(0, 0.3, n)) * 10) / 10
        volts = self.health.voltage(i, t)
        tilt = np.where(rng.random(n) < 0.01, "tilt", "normal")
        extra = {"true_level_pct": np.round(level, 1)}
        out = []
        for key in ("em310-udl", "r718x", "wilsen"):
            m = self.model[i] == key
            if not m.any():
                continue
            d, v = distance[m], volts[m]
            q: dict[str, np.ndarray] = {"distance_mm": d.astype(np.float64), "fill_pct": fill[m]}
            if key == "em310-udl":
                pct = np.clip(np.round((v - 3.0) / 0.65 * 100), 0, 100).astype(np.int64)
                fields = {"battery": pct, "distance": d, "tilt": tilt[m]}
                q["battery_pct"] = pct.astype(np.float64)
                codec, port = "milesight-iot/em310-udl", 85
            elif key == "r718x":
                v1 = np.round(v * 10) / 10
                volt = np.array([f"{x:g}(low battery)" if x < 3.2 else f"{x:g}" for x in v1.tolist()])
                fields = {
                    "Volt": volt,
                    "Status": np.full(m.sum(), "ON"),
                    "Distance": d,
                    "Temp": temp[m],
                    "FillLevel": own_fill[m],
                    "AngleOfInclination": self.tilt_angle[i[m]],
                }
                q.update(temperature_c=temp[m], battery_v=v1)
                codec, port = "netvox/r718x", 6
            else:
                v1 = np.round(v * 10) / 10
                fields = {"proxx_mm": d, "fillinglvl": own_fill[m], "temp": temp[m], "battery_vol": v1}
                q.update(temperature_c=temp[m], battery_v=v1)
                codec, port = "pepperl-fuchs/wilsen-sonic-level", 1
            out.append(ReadingBatch(codec, port, t[m], self.dev[i[m]], fields, q, {k: x[m] for k, x in extra.items()}))
        return out
