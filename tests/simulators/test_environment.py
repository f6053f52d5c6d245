"""Environment stations: heated rooms with office hours indoors, the town's weather outdoors."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.environment import EnvironmentModel
from stadtpuls.simulators.timebase import DAY_US, HOUR_US, from_us, parse_start
from stadtpuls.simulators.weather import Weather

TZ = ZoneInfo("Europe/Berlin")
START = parse_start("2025-07-07")  # a summer Monday


def test_rooms_are_heated_in_office_hours_and_thermometers_follow_the_weather():
    city = build_city("medium", 2)
    weather = Weather(2, TZ)
    model = EnvironmentModel(city, 2, START, TZ, weather)
    indoor, outdoor = [], []
    for w0 in range(START, START + 3 * DAY_US, HOUR_US):
        for b in model.step(w0, w0 + HOUR_US):
            hours = [from_us(int(t)).astimezone(TZ).hour for t in b.t_us]
            if b.codec == "elsys/ers":
                indoor += list(zip(hours, b.quantities["temperature_c"], b.quantities["motion"], strict=True))
            else:
                outdoor += list(zip(b.t_us, b.quantities["temperature_c"], b.quantities["humidity_pct"], strict=True))
    office = [t for h, t, _ in indoor if 8 <= h < 17]
    night = [t for h, t, _ in indoor if h < 5]
    assert 20 < np.mean(office) < 23 and 17 < np.mean(night) < 20
    assert np.mean([m for h, _, m in indoor if 8 <= h < 17]) > 5 > np.mean([m for h, _, m in indoor if h < 5])
    t = np.array([x[0] for x in outdoor])
    assert np.abs(np.array([x[1] for x in outdoor]) - weather.temperature(t)).max() < 3
    assert 12 < np.mean([x[1] for x in outdoor]) < 28  # July in Leipzig
    assert all(0 <= x[2] <= 100 for x in outdoor)
    # reports every 15 (ERS) and 20 (LHT65) minutes
    per_device = len(indoor) / len([d for d in city.devices if d.model.key == "ers"])
    assert abs(per_device - 3 * 96) <= 2
