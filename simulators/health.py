"""Device health: batteries that drain (a few of them fast, until the device dies) and sensor failures that
silence a device for a while. One :class:`Health` covers a group of devices, vectorised; a model states its
devices' natural health once, as a :class:`HealthProfile`, and :meth:`Health.of_model` applies the rates of the
device faults ``drain`` and ``silent`` that a fault spec names (:mod:`.faults`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .city import stream
from .faults import FaultConfig
from .timebase import DAY_US, HOUR_US

__all__ = ["Health", "HealthProfile"]


@dataclass(frozen=True)
class HealthProfile:
    """A device model's natural health: battery voltages and daily drain, and its natural rates of the device
    faults ``drain`` (the share of devices whose battery drains fast) and ``silent`` (failures per device and
    hour)."""

    v_full: float
    v_cutoff: float
    drain_per_day: float
    drain: float
    silent: float


class Health:
    """Battery voltage and availability of ``n`` devices.

    A battery starts between ``v_full - 0.05`` and ``v_full`` and loses ``drain_per_day`` volts a day; a fraction
    ``dying`` of the devices drain 40-80 times faster and fall silent once they reach ``v_cutoff``. Each device
    fails with probability ``failure_per_hour`` in any hour and then stays silent for 2 hours to 3 days.
    """

    def __init__(
        self,
        n: int,
        rng: np.random.Generator,
        start_us: int,
        *,
        v_full: float,
        v_cutoff: float,
        drain_per_day: float,
        dying: float = 0.02,
        failure_per_hour: float = 0.0002,
    ) -> None:
        self.n = n
        self.rng = rng
        self.start_us = start_us
        self.v_cutoff = v_cutoff
        self.v0 = v_full - 0.05 * rng.random(n)
        self.dying = rng.random(n) < dying
        self.drain = np.where(self.dying, drain_per_day * rng.uniform(40, 80, n), drain_per_day)
        self.failure_per_hour = failure_per_hour
        self.down_from = np.zeros(n, dtype=np.int64)
        self.down_until = np.zeros(n, dtype=np.int64)
        self.outages = 0
        self.outage_log: list[tuple[int, int, int]] = []  # (device, from, until) of every outage started

    @classmethod
    def of_model(
        cls, model: str, profile: HealthProfile, n: int, seed: int, start_us: int, faults: FaultConfig
    ) -> Health:
        """The ``n`` devices of ``model`` (its random stream ``<model>-health``) at the profile's natural rates,
        or at the rates of ``drain`` and ``silent`` that ``faults`` names."""
        return cls(
            n,
            stream(seed, f"{model}-health"),
            start_us,
            v_full=profile.v_full,
            v_cutoff=profile.v_cutoff,
            drain_per_day=profile.drain_per_day,
            dying=faults.device_rate("drain", profile.drain),
            failure_per_hour=faults.device_rate("silent", profile.silent),
        )

    def voltage(self, idx: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        days = (np.asarray(t_us, dtype=np.int64) - self.start_us) / DAY_US
        returned: np.ndarray = self.v0[idx] - self.drain[idx] * np.maximum(days, 0.0)
        return returned

    def advance(self, w0: int, w1: int) -> None:
        """Start new failures in the window ``[w0, w1)`` (call once per window, in order)."""
        p = self.failure_per_hour * (w1 - w0) / HOUR_US
        draw = self.rng.random(self.n)
        length = self.rng.uniform(2 * HOUR_US, 3 * DAY_US, self.n).astype(np.int64)
        start = w0 + (self.rng.random(self.n) * (w1 - w0)).astype(np.int64)
        new = (draw < p) & (self.down_until <= w0)
        self.down_from = np.where(new, start, self.down_from)
        self.down_until = np.where(new, start + length, self.down_until)
        self.outages += int(new.sum())
        for k in np.flatnonzero(new).tolist():
            self.outage_log.append((k, int(self.down_from[k]), int(self.down_until[k])))

    def dies_at(self) -> np.ndarray:
        """The instant each device's battery reaches the cutoff (it is silent from then on)."""
        days = (self.v0 - self.v_cutoff) / self.drain
        returned: np.ndarray = self.start_us + np.ceil(days * DAY_US).astype(np.int64)
        return returned

    def alive(self, idx: np.ndarray, t_us: np.ndarray) -> np.ndarray:
        """Whether each device can report at each instant (battery above cutoff, not failed)."""
        t = np.asarray(t_us, dtype=np.int64)
        failed = (t >= self.down_from[idx]) & (t < self.down_until[idx])
        returned: np.ndarray = (self.voltage(idx, t) > self.v_cutoff) & ~failed
        return returned
