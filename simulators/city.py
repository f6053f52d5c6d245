"""The simulated town: its sites (bins, parking lots and spaces, bus lines with stops and vehicles, environment
stations), the devices mounted on them, and the LoRaWAN gateways that hear them.

:func:`build_city` is deterministic in ``(size, seed)``; the network-server dialect of each device comes from
``fmt`` through its own random stream, so the layout is the same whatever the format.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalog import BIN_MODELS, MODELS, SPACE_MODELS, STATION_MODELS, DeviceModel
from .geo import CENTER, STREETS, offset, round_coord

__all__ = ["SIZES", "City", "CitySize", "Device", "Gateway", "Site", "build_city", "stream"]

WASTE_LABELS = {
    "residual": "Restmüll",
    "paper": "Papier",
    "packaging": "Leichtverpackungen",
    "organic": "Bioabfall",
    "glass": "Glas",
}
POINT_TYPES = {
    "center": ("residual", "paper", "packaging"),
    "residential": ("residual", "organic", "packaging"),
    "island": ("glass", "paper", "packaging"),
}
LOT_NAMES = {"center": "Parkhaus", "park_ride": "P+R", "residential": "Anwohnerparken"}


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent, reproducible random stream for one part of the model."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(name.encode())])


@dataclass(frozen=True)
class CitySize:
    name: str
    radius_m: float
    points: int  # waste collection points (three bins each)
    lots: tuple[tuple[str, int], ...]  # (profile, capacity)
    lines: int
    stops: int  # per line
    vehicles: int  # per line
    stations: int
    gateways: int


def _lots(n: int) -> tuple[tuple[str, int], ...]:
    profiles = ("center", "park_ride", "residential")
    return tuple((profiles[i % 3], 60 + (i * 37) % 140) for i in range(n))


SIZES: dict[str, CitySize] = {
    "small": CitySize("small", 1800, 8, (("center", 12), ("park_ride", 16), ("residential", 10)), 1, 8, 2, 2, 2),
    "medium": CitySize(
        "medium",
        4500,
        100,
        (
            ("center", 120),
            ("park_ride", 150),
            ("residential", 40),
            ("center", 80),
            ("park_ride", 60),
            ("residential", 50),
        ),
        4,
        14,
        3,
        6,
        5,
    ),
    "large": CitySize("large", 8000, 650, _lots(20), 12, 20, 5, 20, 12),
}


@dataclass
class Site:
    site_id: str
    kind: str  # bin | lot | space | line | vehicle | stop | station
    name: str
    parent_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    waste_type: str | None = None
    depth_mm: int | None = None
    full_mm: int | None = None
    volume_l: int | None = None
    threshold_pct: float | None = None
    capacity: int | None = None
    seq: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    # open-data facts (ParkAPI v3 / GTFS-Realtime), see stadtpuls.fleet
    lot_type: str | None = None
    purpose: str | None = None
    park_and_ride: list[str] | None = None
    address: str | None = None
    opening_hours: str | None = None
    has_fee: bool | None = None
    fee_description: str | None = None
    operator_name: str | None = None
    public_url: str | None = None
    seated_capacity: int | None = None
    standing_capacity: int | None = None
    gtfs_route_id: str | None = None


#: Per lot profile: ParkAPI type, opening hours, fee (EUR per hour, None = free), park-and-ride.
LOT_FACTS: dict[str, tuple[str, str, float | None, list[str] | None]] = {
    "center": ("CAR_PARK", "Mo-Sa 07:00-23:00; Su 10:00-20:00", 2.0, None),
    "park_ride": ("OFF_STREET_PARKING_GROUND", "24/7", None, ["BUS"]),
    "residential": ("ON_STREET", "24/7", 1.0, None),
}
#: Seats and standing places of the two bus types (their sum is the design capacity).
BUS_SEATS = {85: (32, 53), 140: (48, 92)}


@dataclass
class Device:
    index: int
    dev_eui: str  # 16 lower-case hex digits
    model: DeviceModel
    name: str
    site_id: str
    lns_device_id: str  # The Things Stack device id
    lat: float
    lon: float
    lns: str  # tts | chirpstack
    report_interval_s: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def codec(self) -> str:
        return self.model.codec


@dataclass(frozen=True)
class Gateway:
    gateway_id: str  # TTS gateway id
    eui: str  # 16 lower-case hex digits (ChirpStack gatewayId)
    lat: float
    lon: float
    altitude: int


@dataclass
class City:
    size: CitySize
    seed: int
    center: tuple[float, float]
    sites: list[Site]
    devices: list[Device]
    gateways: list[Gateway]

    def __post_init__(self) -> None:
        self.site_by_id = {s.site_id: s for s in self.sites}
        self.device_by_eui = {d.dev_eui: d for d in self.devices}

    def sites_of(self, kind: str) -> list[Site]:
        return [s for s in self.sites if s.kind == kind]

    def devices_on(self, kind: str) -> list[Device]:
        return [d for d in self.devices if self.site_by_id[d.site_id].kind == kind]


def build_city(
    size: str | CitySize = "medium",
    seed: int = 1,
    fmt: str = "mixed",
    center: tuple[float, float] = CENTER,
    site_prefix: str = "",
) -> City:
    """The town of ``size`` for ``seed``; ``fmt`` (tts | chirpstack | mixed) picks each device's network server.
    ``site_prefix`` starts every site id (``nord-bin-0001``): several towns on one hub need distinct ids."""
    spec = SIZES[size] if isinstance(size, str) else size
    rng = stream(seed, "city")
    sites: list[Site] = []
    placements: list[tuple[str, str, str]] = []  # (model key, site id, device name)
    R = spec.radius_m

    def at(east: float, north: float) -> tuple[float, float]:
        lat, lon = offset(center, east, north)
        return round_coord(float(lat)), round_coord(float(lon))

    # waste collection points, three bins each
    n_bin = 0
    for p in range(spec.points):
        r = R * math.sqrt(rng.random())
        a = rng.random() * 2 * math.pi
        ptype = "center" if r < 0.3 * R else ("residential" if rng.random() < 0.55 else "island")
        if p < 3:  # every town has each kind of collection point
            ptype = ("center", "residential", "island")[p]
            r = 0.3 * R * math.sqrt(rng.random()) if p == 0 else R * math.sqrt(0.09 + 0.91 * rng.random())
        street = STREETS[int(rng.integers(len(STREETS)))]
        number = int(rng.integers(1, 120))
        district = int(((a / (2 * math.pi)) * 5) % 5)  # sector of town: its collection weekday
        for waste in POINT_TYPES[ptype]:
            n_bin += 1
            volume = {"organic": 240, "glass": 2500}.get(waste, int(rng.choice([660, 1100, 1100])))
            depth, full = {240: (1000, 180), 660: (1150, 200), 1100: (1250, 220), 2500: (1650, 250)}[volume]
            lat, lon = at(r * math.cos(a) + rng.normal(0, 3), r * math.sin(a) + rng.normal(0, 3))
            sid = f"{site_prefix}bin-{n_bin:04d}"
            sites.append(
                Site(
                    sid,
                    "bin",
                    f"{WASTE_LABELS[waste]}, {street} {number}",
                    None,
                    lat,
                    lon,
                    waste,
                    depth,
                    full,
                    volume,
                    75.0 if waste == "organic" else 80.0,
                    params={"area": ptype, "district": district, "point": p + 1},
                )
            )
            placements.append((BIN_MODELS[(n_bin - 1) % 3], sid, f"{WASTE_LABELS[waste]} {street} {number}"))

    # parking lots and their spaces; one sensor make per lot
    for i, (profile, capacity) in enumerate(spec.lots):
        band = {"center": (0.0, 0.25), "park_ride": (0.6, 0.9), "residential": (0.3, 0.7)}[profile]
        r = R * (band[0] + (band[1] - band[0]) * rng.random())
        a = rng.random() * 2 * math.pi
        east, north = r * math.cos(a), r * math.sin(a)
        lot_id = f"{site_prefix}lot-{i + 1:02d}"
        street = STREETS[int(rng.integers(len(STREETS)))]
        lat, lon = at(east, north)
        lot_type, hours, fee, ride = LOT_FACTS[profile]
        sites.append(
            Site(
                lot_id,
                "lot",
                f"{LOT_NAMES[profile]} {street}",
                None,
                lat,
                lon,
                capacity=capacity,
                params={"profile": profile},
                lot_type=lot_type,
                purpose="CAR",
                park_and_ride=ride,
                address=f"{street} {i + 1}, 04109 Leipzig",
                opening_hours=hours,
                has_fee=fee is not None,
                fee_description=None if fee is None else f"{fee:.2f} EUR pro Stunde",
                operator_name="Stadtwerke",
            )
        )
        model = SPACE_MODELS[i % 3]
        for k in range(capacity):
            row, col = divmod(k, 20)
            sid = f"{lot_id}-s{k + 1:03d}"
            slat, slon = at(east + (col - 10) * 2.6, north + row * 6.0)
            sites.append(Site(sid, "space", f"Stellplatz {k + 1}", lot_id, slat, slon))
            placements.append((model, sid, f"{lot_id} space {k + 1}"))

    # bus lines: stops along a bent path across town, vehicles shuttling end to end
    for i in range(spec.lines):
        number = (60, 70, 72, 74, 80, 89, 90, 91, 131, 141, 162, 172)[i % 12] + 100 * (i // 12)
        line_id = f"{site_prefix}line-{number}"
        sites.append(Site(line_id, "line", f"Bus {number}", gtfs_route_id=str(number)))
        a0 = rng.random() * 2 * math.pi
        a1 = a0 + math.pi + rng.uniform(-0.6, 0.6)
        ax, ay = 0.9 * R * math.cos(a0), 0.9 * R * math.sin(a0)
        bx, by = 0.9 * R * math.cos(a1), 0.9 * R * math.sin(a1)
        bend = rng.uniform(-0.25, 0.25) * R
        nx, ny = -(by - ay), bx - ax
        norm = math.hypot(nx, ny) or 1.0
        for s in range(spec.stops):
            f = s / (spec.stops - 1)
            e = ax + (bx - ax) * f + nx / norm * bend * math.sin(math.pi * f) + rng.normal(0, 40)
            n = ay + (by - ay) * f + ny / norm * bend * math.sin(math.pi * f) + rng.normal(0, 40)
            lat, lon = at(e, n)
            name = STREETS[int(rng.integers(len(STREETS)))].replace("str.", "straße").replace("Str.", "Straße")
            sites.append(Site(f"{line_id}-s{s + 1:02d}", "stop", name, line_id, lat, lon, seq=s + 1))
        for v in range(spec.vehicles):
            vid = f"{site_prefix}bus-{number}-{v + 1}"
            capacity = 140 if rng.random() < 0.4 else 85
            seats, standing = BUS_SEATS[capacity]
            sites.append(
                Site(
                    vid,
                    "vehicle",
                    f"Bus {number} Wagen {v + 1}",
                    line_id,
                    capacity=capacity,
                    seated_capacity=seats,
                    standing_capacity=standing,
                )
            )
            placements.append(("paxcounter", vid, f"{vid} paxcounter"))
            placements.append(("vs133", vid, f"{vid} door counter"))

    # environment stations: indoor rooms (Elsys ERS) and outdoor thermometers (Dragino LHT65)
    buildings = ("Rathaus", "Stadtbibliothek", "Oberschule", "Bürgeramt", "Sporthalle", "Kita")
    for i in range(spec.stations):
        model = STATION_MODELS[i % 2]
        r = R * 0.8 * math.sqrt(rng.random())
        a = rng.random() * 2 * math.pi
        lat, lon = at(r * math.cos(a), r * math.sin(a))
        label = buildings[(i // 2) % len(buildings)] if model == "ers" else "Wetterstation"
        sid = f"{site_prefix}station-{i + 1:02d}"
        sites.append(
            Site(
                sid,
                "station",
                f"{label} {STREETS[int(rng.integers(len(STREETS)))]}",
                None,
                lat,
                lon,
                params={"indoor": model == "ers"},
            )
        )
        placements.append((model, sid, f"{label} {model}"))

    gateways = []
    for g in range(spec.gateways):
        r = 0.0 if g == 0 else R * (0.35 + 0.5 * rng.random())
        a = 2 * math.pi * g / max(spec.gateways - 1, 1) + rng.uniform(-0.3, 0.3)
        lat, lon = at(r * math.cos(a), r * math.sin(a))
        eui = "b827ebfffe" + rng.bytes(3).hex()
        gateways.append(Gateway(f"stadtpuls-gw-{g + 1:02d}", eui, lat, lon, int(110 + rng.integers(15, 60))))

    return City(spec, seed, center, sites, _devices(placements, sites, seed, fmt), gateways)


def _devices(placements: list[tuple[str, str, str]], sites: list[Site], seed: int, fmt: str) -> list[Device]:
    if fmt not in ("tts", "chirpstack", "mixed"):
        raise ValueError(f"unknown format {fmt!r} (tts | chirpstack | mixed)")
    by_id = {s.site_id: s for s in sites}
    eui_rng = stream(seed, "dev_eui")
    lns_rng = stream(seed, "lns")
    devices: list[Device] = []
    seen: set[str] = set()
    for index, (key, site_id, name) in enumerate(placements):
        model = MODELS[key]
        eui = model.eui_prefix + eui_rng.bytes(5).hex()
        while eui in seen:
            eui = model.eui_prefix + eui_rng.bytes(5).hex()
        seen.add(eui)
        pick = lns_rng.random()
        lns = fmt if fmt != "mixed" else ("tts" if pick < 0.5 else "chirpstack")
        site = by_id[site_id]
        lat, lon = site.lat, site.lon
        if lat is None or lon is None:  # on a vehicle: placed at its line's first stop
            first = by_id[f"{site.parent_id}-s01"]
            lat, lon = first.lat, first.lon
        devices.append(
            Device(
                index,
                eui,
                model,
                name,
                site_id,
                f"{key}-{eui[-6:]}-{site_id}".replace("_", "-"),
                float(lat or 0),
                float(lon or 0),
                lns,
                model.report_interval_s or 3600,
            )
        )
    return devices
