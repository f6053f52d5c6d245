"""A small seeded town for the SensorThings tests: two bins with a day of fill levels, a lot of two spaces, a bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apitest import Seeder, hours_ago

BASE = "http://test/sta/v1.1"


@dataclass
class Town:
    bins: list[str]  # DevEUIs
    spaces: list[str]
    bus: str
    times: list[datetime]  # the bins' reading times, oldest first


def seed_town(seed: Seeder, hours: int = 24) -> Town:
    b1 = seed.bin("bin-1", lat=51.33, lon=12.38)
    b2 = seed.bin("bin-2", lat=51.36, lon=12.42, waste_type="paper")
    times = [hours_ago(hours - h) for h in range(hours)]
    seed.levels(b1, [(t, 10.0 + 2.5 * k) for k, t in enumerate(times)])
    seed.levels(b2, [(t, 50.0 + 0.5 * k) for k, t in enumerate(times)], battery_pct=None)
    spaces = seed.lot("lot-a", 2, lat=51.34, lon=12.37)
    seed.park(spaces[0], hours_ago(2), True)
    seed.park(spaces[0], hours_ago(1), False)
    seed.park(spaces[1], hours_ago(1), True)
    seed.site("line-1", "line")
    seed.site("bus-1", "vehicle", parent_id="line-1", capacity=80)
    bus = seed.device("bus-1", codec="sensative/pax", name="bus 1 counter")
    seed.passengers(bus, hours_ago(1), pax_in=3, pax_out=1, pax_count=17)
    return Town([b1, b2], spaces, bus, times)


def public_id(seed: Seeder, dev_eui: str) -> int:
    row = seed.conn.execute("SELECT public_id FROM devices WHERE dev_eui = %s", (dev_eui,)).fetchone()
    assert row is not None
    return int(row[0])


def site_id(seed: Seeder, site: str) -> int:
    row = seed.conn.execute("SELECT public_id FROM sites WHERE site_id = %s", (site,)).fetchone()
    assert row is not None
    return int(row[0])


def hour(times: list[datetime], k: int) -> datetime:
    return times[0] + timedelta(hours=k)
