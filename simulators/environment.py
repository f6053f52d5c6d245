"""Environment stations: Elsys ERS room sensors in public buildings (heating schedule, daylight and lamps,
people moving during opening hours) and Dragino LHT65 thermometers outdoors (the town's weather).
"""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import numpy as np

from .city import City, stream
from .faults import FaultConfig
from .health import Health, HealthProfile
from .readings import ReadingBatch, periodic_times
from .timebase import US, local_week_hours
from .weather import Weather

__all__ = ["EnvironmentModel"]

HEALTH = HealthProfile(v_full=3.65, v_cutoff=2.6, drain_per_day=0.0005, drain=0.0, silent=0.0002)


class EnvironmentModel:
    def __init__(
        self, city: City, seed: int, start_us: int, tz: ZoneInfo, weather: Weather, faults: FaultConfig | None = None
    ) -> None:
        faults = faults or FaultConfig()
        self.rng = rng = stream(seed, "environment")
        self.tz = tz
        self.weather = weather
        self.devices = city.devices_on("station")
        n = self.n = len(self.devices)
        self.dev = np.array([d.index for d in self.devices], dtype=np.int64)
        self.model = np.array([d.model.key for d in self.devices])
        self.interval = np.array([d.report_interval_s for d in self.devices], dtype=np.int64) * US
        self.phase = (rng.random(n) * self.interval).astype(np.int64)
        self.offset = rng.normal(0, 0.6, n)  # microclimate / room
        self.health = Health.of_model("environment", HEALTH, n, seed, start_us, faults)

    def step(self, w0: int, w1: int) -> list[ReadingBatch]:
        rng = self.rng
        self.health.advance(w0, w1)
        t, i = periodic_times(w0, w1, self.interval, self.phase, rng)
        alive = self.health.alive(i, t)
        t, i = t[alive], i[alive]
        if len(t) == 0:
            return []
        outdoor = self.weather.temperature(t)
        humidity = self.weather.humidity(t)
        week_h = local_week_hours(t, self.tz)
        hour = week_h % 24
        workday = week_h < 120
        volts = self.health.voltage(i, t)
        out = []
        m = self.model[i] == "ers"
        if m.any():
            h, wd, n = hour[m], workday[m], int(m.sum())
            open_ = wd & (h >= 7) & (h < 18)
            room = np.where(open_, 21.5, 18.5) + 0.08 * (outdoor[m] - 10) + self.offset[i[m]] + rng.normal(0, 0.15, n)
            temp = np.round(room * 10) / 10
            rh = np.clip(np.round(38 + 0.25 * (humidity[m] - 70) + rng.normal(0, 1.5, n)), 15, 80).astype(np.int64)
            daylight = np.clip(np.sin(math.pi * (h - 6) / 14), 0, None) * 250
            light = np.round(daylight + np.where(open_, 380, 0) + rng.normal(0, 10, n)).clip(0, 65535).astype(np.int64)
            motion = np.where(open_, rng.poisson(9, n), rng.poisson(0.1, n)).clip(0, 255)
            vdd = np.round(volts[m] * 1000).astype(np.int64)
            fields = {"temperature": temp, "humidity": rh, "light": light, "motion": motion, "vdd": vdd}
            q = {
                "temperature_c": temp,
                "humidity_pct": rh.astype(np.float64),
                "light_lux": light.astype(np.float64),
                "motion": motion.astype(np.float64),
                "battery_v": vdd / 1000.0,
            }
            out.append(ReadingBatch("elsys/ers", 5, t[m], self.dev[i[m]], fields, q))
        m = ~m
        if m.any():
            n = int(m.sum())
            temp = np.round((outdoor[m] + self.offset[i[m]] + rng.normal(0, 0.1, n)) * 100) / 100
            rh = np.round(np.clip(humidity[m] + rng.normal(0, 1.0, n), 5, 100) * 10) / 10
            batv = np.round((volts[m] - 0.55) * 1000) / 1000  # the LHT65 reports its cell at about 3.05 V
            fields = {
                "BatV": batv,
                "Bat_status": np.where(batv > 2.7, 3, 1),
                "TempC_SHT": temp,
                "Hum_SHT": rh,
                "Ext_sensor": np.full(n, "No external sensor"),
            }
            q = {"temperature_c": temp, "humidity_pct": rh, "battery_v": batv}
            out.append(ReadingBatch("dragino/lht65", 2, t[m], self.dev[i[m]], fields, q))
        return out
