"""Device health: batteries drain (dying ones until the device falls silent) and failures silence devices."""

from __future__ import annotations

import numpy as np

from stadtpuls.simulators.health import Health
from stadtpuls.simulators.timebase import DAY_US, HOUR_US


def test_dying_batteries_reach_the_cutoff_and_silence_their_devices():
    rng = np.random.default_rng(1)
    h = Health(400, rng, 0, v_full=3.65, v_cutoff=3.0, drain_per_day=0.0004, dying=0.05, failure_per_hour=0.0)
    idx = np.arange(400)
    later = np.full(400, 60 * DAY_US)
    volts = h.voltage(idx, later)
    assert h.dying.sum() > 5
    assert (volts[~h.dying] > 3.5).all()  # a normal cell loses a few hundredths of a volt in two months
    assert (volts[h.dying] < 3.0).all()
    assert (h.alive(idx, later) == ~h.dying).all()
    assert h.alive(idx, np.zeros(400, dtype=np.int64)).all()


def test_failures_silence_a_device_for_hours_to_days_and_it_comes_back():
    rng = np.random.default_rng(2)
    h = Health(50, rng, 0, v_full=3.6, v_cutoff=2.9, drain_per_day=0.0, dying=0.0, failure_per_hour=0.01)
    down_hours = np.zeros(50)
    for w0 in range(0, 30 * DAY_US, HOUR_US):
        h.advance(w0, w0 + HOUR_US)
        down_hours += ~h.alive(np.arange(50), np.full(50, w0 + HOUR_US - 1))
    assert h.outages > 5
    assert 0 < down_hours.sum() < 50 * 30 * 24 * 0.9
    assert h.alive(np.arange(50), np.full(50, 40 * DAY_US)).all()  # every outage ends within three days
