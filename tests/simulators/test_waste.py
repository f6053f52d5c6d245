"""Waste bins: filling by type, emptying at pickups, overflowing when nobody comes."""

from __future__ import annotations

import collections
from zoneinfo import ZoneInfo

import numpy as np

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.timebase import DAY_US, HOUR_US, parse_start
from stadtpuls.simulators.waste import RATES, WasteModel
from stadtpuls.simulators.weather import Weather

TZ = ZoneInfo("Europe/Berlin")
START = parse_start("2025-03-03")


def _run(schedule=None, days: int = 14, size: str = "small", seed: int = 5):
    city = build_city(size, seed)
    model = WasteModel(city, seed, START, TZ, Weather(seed, TZ), schedule)
    rows = collections.defaultdict(list)  # site -> [(t, fill_pct, true level)]
    for w0 in range(START, START + days * DAY_US, HOUR_US):
        for batch in model.step(w0, w0 + HOUR_US):
            for k in range(len(batch)):
                site = city.devices[int(batch.dev[k])].site_id
                rows[site].append(
                    (
                        int(batch.t_us[k]),
                        float(batch.quantities["fill_pct"][k]),
                        float(batch.extra["true_level_pct"][k]),
                    )
                )
    return city, model, rows


def test_without_collection_bins_fill_up_and_overflow():
    city, model, rows = _run(schedule=lambda day, now: [], days=21)
    assert model.pickups == []
    assert len(model.overflow_days) > 0
    full = [site for site, r in rows.items() if max(f for _, f, _ in r) >= 100.0]
    assert len(full) >= len(rows) // 3
    for r in rows.values():  # the true levels only rise
        levels = np.array([lvl for _, _, lvl in r])
        assert (np.diff(levels) >= -1e-9).all()


def test_the_weekly_round_empties_every_bin_and_the_sensor_sees_the_drop():
    city, model, rows = _run(days=14)
    picked = collections.Counter(site for _, site in model.pickups)
    assert set(picked) == {b.site_id for b in city.sites_of("bin")}
    assert all(n >= 2 for n in picked.values())  # at least weekly
    drops = 0
    for t_pick, site in model.pickups:
        before = [lvl for t, _, lvl in rows[site] if t < t_pick]
        after = [lvl for t, _, lvl in rows[site] if t > t_pick]
        if before and after:
            assert after[0] < 25.0  # emptied: what is left plus at most an hour's (or a bulky) load
            drops += before[-1] > after[0]
    assert drops >= len(model.pickups) * 0.9
    # pickups happen on weekdays, during the morning round
    for t, _ in model.pickups:
        local = np.datetime64(t, "us").astype(object).replace(tzinfo=ZoneInfo("UTC")).astimezone(TZ)
        assert local.weekday() < 5 and 6 <= local.hour < 15


def test_bins_report_hourly_and_fill_faster_for_residual_than_glass():
    city, model, rows = _run(schedule=lambda day, now: [], days=7, size="medium")
    reports = [len(r) for r in rows.values()]
    assert np.median(reports) == 7 * 24
    rate = collections.defaultdict(list)
    for site, r in rows.items():
        s = city.site_by_id[site]
        rate[s.waste_type].append((r[-1][2] - r[0][2]) / 7)
    assert np.mean(rate["glass"]) < np.mean(rate["residual"])
    assert RATES["glass"] < RATES["residual"]
