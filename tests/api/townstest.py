"""Helpers of the per-town tests: two towns on one hub, each with lots, a bus line with a bus on the road, and bins,
written with the plain-SQL seeder; every site and device of a town carries its slug."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from apitest import Seeder, now


@dataclass(frozen=True)
class Town:
    slug: str
    name: str
    lots: tuple[str, ...]
    line: str
    bus: str
    bins: tuple[str, ...]
    brand_name: str | None = None
    logo_url: str | None = None
    colour: str | None = None

    @property
    def spaces(self) -> int:
        return 3 * len(self.lots)


NORTH = Town(
    "north",
    "Nordstadt",
    ("n-markt", "n-bahnhof"),
    "n-line-1",
    "n-bus-1",
    ("n-bin-1", "n-bin-2"),
    brand_name='Nordstadt <live> & "more"',
    logo_url="https://cdn.example.org/nord.svg",
    colour="#ffd23f",
)
SOUTH = Town("south", "Südheim", ("s-hafen",), "s-line-7", "s-bus-7", ("s-bin-1",))
TOWNS = (NORTH, SOUTH)


def seed_town(seed: Seeder, town: Town, *, lat: float, free: int, passengers: int, full_bins: int) -> None:
    """``town`` with its lots of three sensored spaces each (``free`` of the first lot's spaces free, the rest
    occupied), a line with two stops and a bus carrying ``passengers``, and bins of which ``full_bins`` are over
    their threshold."""
    seed.conn.execute(
        "INSERT INTO tenants (slug, name, brand_name, logo_url, colour) VALUES (%s, %s, %s, %s, %s)",
        (town.slug, town.name, town.brand_name, town.logo_url, town.colour),
    )
    t = now()
    for k, lot in enumerate(town.lots):
        devs = seed.lot(lot, 3, lat=lat + k / 100, lon=12.37 + k / 100)
        for i, dev in enumerate(devs):
            seed.park(dev, t - timedelta(minutes=5), occupied=not (k == 0 and i < free))
    seed.site(town.line, "line", name=f"{town.name} {town.line}")
    seed.conn.execute("UPDATE sites SET gtfs_route_id = %s WHERE site_id = %s", (f"route-{town.line}", town.line))
    for k in range(2):
        seed.site(f"{town.line}-stop-{k}", "stop", parent_id=town.line, seq=k, lat=lat + k / 1000, lon=12.4)
    seed.site(town.bus, "vehicle", parent_id=town.line, capacity=80, name=f"Wagen {town.bus}")
    door = seed.device(town.bus, codec="milesight-iot/vs133")
    seed.passengers(door, t - timedelta(minutes=3), pax_in=passengers, pax_out=0, stop_id=f"{town.line}-stop-0")
    for k, bin_id in enumerate(town.bins):
        dev = seed.bin(bin_id, lat=lat - 0.01, lon=12.36 + k / 100, threshold=80)
        seed.levels(dev, [(t - timedelta(hours=1), 90.0 if k < full_bins else 20.0)])
    prefix = town.slug[0] + "-%"
    seed.conn.execute("UPDATE sites SET tenant = %s WHERE site_id LIKE %s", (town.slug, prefix))
    seed.conn.execute(
        "UPDATE devices d SET tenant = s.tenant FROM sites s WHERE s.site_id = d.site_id AND s.tenant = %s",
        (town.slug,),
    )


def seed_towns(seed: Seeder) -> None:
    """North: two lots (1 of 6 spaces free), a bus with 30 on board, one of two bins full. South: one lot (2 of 3
    free), a bus with 12 on board, its bin not full."""
    seed_town(seed, NORTH, lat=53.55, free=1, passengers=30, full_bins=1)
    seed_town(seed, SOUTH, lat=48.14, free=2, passengers=12, full_bins=0)
