"""Outdoor weather of the simulated town: air temperature and relative humidity over the year and the day.

Seasonal means follow Leipzig's climate (about 1 degC in January, 19.5 degC in July); the daily cycle peaks at
15:00 local time; each day has its own anomaly (a reproducible draw per date), interpolated linearly between
days so that temperatures change smoothly.
"""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import numpy as np

from .timebase import DAY_US, HOUR_US

__all__ = ["Weather"]


class Weather:
    def __init__(self, seed: int, tz: ZoneInfo) -> None:
        self.seed = int(seed) & 0xFFFFFFFF
        self.tz = tz
        self._anomaly: dict[int, tuple[float, float]] = {}

    def _day(self, day: int) -> tuple[float, float]:
        """(temperature anomaly degC, humidity anomaly %) of a day (days since the epoch)."""
        got = self._anomaly.get(day)
        if got is None:
            rng = np.random.default_rng([self.seed, 0x57EA, day & 0xFFFFFFFF])
            got = (float(rng.normal(0.0, 2.5)), float(rng.normal(0.0, 8.0)))
            self._anomaly[day] = got
        return got

    def _anomalies(self, us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = us / DAY_US
        day = np.floor(pos).astype(np.int64)
        frac = pos - day
        t = np.empty(len(us))
        h = np.empty(len(us))
        for d in np.unique(day).tolist():
            a0, b0 = self._day(d)
            a1, b1 = self._day(d + 1)
            m = day == d
            t[m] = a0 + (a1 - a0) * frac[m]
            h[m] = b0 + (b1 - b0) * frac[m]
        return t, h

    def _local_hour(self, us: np.ndarray) -> np.ndarray:
        if len(us) == 0:
            return np.zeros(0)
        from .timebase import from_us

        off = from_us(int(us[0])).astimezone(self.tz).utcoffset()
        shift = int(off.total_seconds()) * 1_000_000 if off is not None else 0
        return ((us + shift) % DAY_US) / HOUR_US

    def temperature(self, us: np.ndarray) -> np.ndarray:
        """Air temperature in degC at each instant."""
        us = np.asarray(us, dtype=np.int64)
        doy = (us % (365.25 * DAY_US)) / DAY_US  # day of the year (epoch-aligned, good to a day)
        season = 10.0 - 9.3 * np.cos(2 * math.pi * (doy - 18) / 365.25)
        swing = 3.5 + 1.5 * -np.cos(2 * math.pi * (doy - 18) / 365.25)
        hour = self._local_hour(us)
        daily = swing * np.cos(2 * math.pi * (hour - 15) / 24)
        anomaly, _ = self._anomalies(us)
        returned: np.ndarray = season + daily + anomaly
        return returned

    def humidity(self, us: np.ndarray) -> np.ndarray:
        """Relative humidity in percent (highest before sunrise, lowest in the afternoon)."""
        us = np.asarray(us, dtype=np.int64)
        hour = self._local_hour(us)
        _, anomaly = self._anomalies(us)
        returned: np.ndarray = np.clip(72 + 14 * np.cos(2 * math.pi * (hour - 5) / 24) + anomaly, 20, 100)
        return returned
