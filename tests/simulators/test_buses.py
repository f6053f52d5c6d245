"""Buses: passengers on board stay within capacity and add up; the Paxcounter reports at every stop just before
the door counter; demand follows the rush hours and the timetable's service hours."""

from __future__ import annotations

import collections
from zoneinfo import ZoneInfo

import numpy as np

from stadtpuls.simulators.buses import BusModel
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.geo import distance_m
from stadtpuls.simulators.timebase import DAY_US, HOUR_US, US, from_us, parse_start

TZ = ZoneInfo("Europe/Berlin")
START = parse_start("2025-03-03")  # Monday


def _run(days: int = 2, seed: int = 8):
    city = build_city("medium", seed)
    model = BusModel(city, seed, START, TZ)
    pax, door = [], []
    for w0 in range(START, START + days * DAY_US, HOUR_US):
        for b in model.step(w0, w0 + HOUR_US):
            for k in range(len(b)):
                row = {
                    "t": int(b.t_us[k]),
                    "dev": int(b.dev[k]),
                    "stop": str(b.extra["stop_id"][k]),
                    "onboard": int(b.extra["onboard"][k]),
                    **{q: float(v[k]) for q, v in b.quantities.items()},
                }
                if b.codec == "opensource/esp32-paxcounter":
                    row.update(
                        lat=float(b.extra["lat"][k]),
                        lon=float(b.extra["lon"][k]),
                        wifi=int(b.fields["wifi"][k]),
                        ble=int(b.fields["ble"][k]),
                    )
                    pax.append(row)
                else:
                    row.update(total_in=int(b.fields["line_1.total_in"][k] + b.fields["line_2.total_in"][k]))
                    door.append(row)
    return city, model, pax, door


def test_load_stays_within_capacity_and_equals_boardings_minus_alightings():
    city, model, pax, door = _run()
    vehicle_of = {d.index: d.site_id for d in city.devices}
    by_vehicle = collections.defaultdict(list)
    for row in door:
        by_vehicle[vehicle_of[row["dev"]]].append(row)
    assert len(by_vehicle) == len(model.vehicles)
    for vid, rows in by_vehicle.items():
        cap = city.site_by_id[vid].capacity
        onboard = 0
        for row in sorted(rows, key=lambda r: r["t"]):
            onboard += row["pax_in"] - row["pax_out"]
            assert onboard == row["onboard"]
            assert 0 <= onboard <= cap


def test_paxcounter_reports_at_the_stop_just_before_the_door_counter():
    city, _, pax, door = _run(days=1)
    stops = {s.site_id: s for s in city.sites_of("stop")}
    vehicle_of = {d.index: d.site_id for d in city.devices}
    door_at = {(vehicle_of[r["dev"]], r["t"]): r for r in door}
    assert len(pax) == len(door) > 500
    for p in pax:
        d = door_at[(vehicle_of[p["dev"]], p["t"] + 3 * US)]
        assert d["stop"] == p["stop"] and d["onboard"] == p["onboard"] == p["pax_count"] == p["wifi"] + p["ble"]
        s = stops[p["stop"]]
        assert distance_m(s.lat, s.lon, p["lat"], p["lon"]) < 30


def test_rush_hours_are_busier_and_nights_are_without_service():
    _, _, _, door = _run(days=1)
    by_hour = collections.Counter()
    for row in door:
        by_hour[from_us(row["t"]).astimezone(TZ).hour] += row["pax_in"]
    assert by_hour[7] + by_hour[8] > 1.5 * (by_hour[20] + by_hour[21])
    assert all(by_hour[h] == 0 for h in (1, 2, 3))  # no service between 23:30 and 05:00 on a Monday night
    totals = [r["total_in"] for r in door]
    assert np.all(np.array(totals) > 0)
