"""Parking: occupancy follows the lots' daily and weekly curves; sensors report changes plus heartbeats."""

from __future__ import annotations

import collections
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.parking import ParkingModel
from stadtpuls.simulators.timebase import DAY_US, HOUR_US, US, parse_start, to_us
from stadtpuls.simulators.weather import Weather

TZ = ZoneInfo("Europe/Berlin")
START = parse_start("2025-03-03")  # Monday


def _week(seed: int = 3):
    city = build_city("medium", seed)
    model = ParkingModel(city, seed, START, TZ, Weather(seed, TZ))
    occupancy: dict[int, np.ndarray] = {}
    events = collections.defaultdict(list)  # dev -> [(t, occupied, event)]
    for w0 in range(START, START + 7 * DAY_US, HOUR_US):
        for batch in model.step(w0, w0 + HOUR_US):
            for k in range(len(batch)):
                events[int(batch.dev[k])].append(
                    (int(batch.t_us[k]), bool(batch.quantities["occupied"][k]), str(batch.extra["event"][k]))
                )
        occupancy[w0 + HOUR_US] = np.array([model.occupied[model.lot == i].mean() for i in range(len(model.lot_ids))])
    return city, model, occupancy, events


def _at(day: int, hour: int) -> int:
    return to_us(datetime(2025, 3, 3 + day, hour, tzinfo=TZ))


def test_occupancy_follows_the_profiles_of_the_lots():
    city, model, occ, _ = _week()
    profile = [city.site_by_id[i].params["profile"] for i in model.lot_ids]
    lots = {p: [k for k, q in enumerate(profile) if q == p] for p in set(profile)}

    def mean(p: str, day: int, hour: int) -> float:
        return float(occ[_at(day, hour)][lots[p]].mean())

    assert mean("center", 5, 11) > 0.8  # busy Saturday morning
    assert mean("center", 6, 4) < 0.25  # quiet Sunday night
    assert mean("center", 5, 11) > mean("center", 2, 11)
    assert mean("park_ride", 1, 11) > 0.75 and mean("park_ride", 1, 23) < 0.25
    assert mean("park_ride", 6, 11) < 0.35  # commuters do not come on Sundays
    assert mean("residential", 2, 3) > 0.8 and mean("residential", 2, 11) < 0.65


def test_sensors_report_every_change_and_a_heartbeat_when_silent():
    city, model, _, events = _week(4)
    assert model.changes > 1000
    for dev, ev in events.items():
        ev.sort()
        interval = city.devices[dev].report_interval_s * US
        gaps = np.diff([t for t, _, _ in ev])
        assert (gaps > 0).all()
        quiet = gaps > interval + 60 * US
        assert quiet.sum() <= 3  # only across a sensor outage or a dead battery
        state = None
        last = None
        for t, occupied, kind in ev:
            if last is not None and t - last > interval + 60 * US:
                state = None  # back from an outage: cars may have come and gone unseen
            last = t
            if kind == "change" and state is not None:
                assert occupied != state
            if kind == "heartbeat" and state is not None:
                assert occupied == state
            state = occupied
