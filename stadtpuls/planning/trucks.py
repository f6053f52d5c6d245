"""The collection fleet: trucks per fraction (waste type) with their compacted volume, shifts and the disposal sites
where they unload. Pure values; :func:`fleet_from_mapping` reads the YAML layout of ``STADTPULS_FLEET_FILE``::

    depot: {lat: 51.3397, lon: 12.3731}          # optional, default: the depot given by the caller
    shift_start_hour: 7.0                        # local hour the trucks leave the depot
    shift_hours: 8.0
    speed_kmh: 25.0
    service_s: 90                                # per bin
    unload_s: 900                                # per stop at a disposal site
    crew: 2                                      # people per truck (crew hours = truck hours x crew)
    fractions:
      residual:
        trucks: 2                                # a count, or a list of names
        capacity_m3: 20                          # body volume
        compaction: 3.0                          # bin litres per litre of body
        disposal_sites: [{name: Transfer station, lat: 51.36, lon: 12.41}]

A fraction without disposal sites unloads at the depot; a waste type without a fraction uses ``default``.

Exceptions::

    ValueError
     +-- FleetConfigError    the mapping is not a fleet (attributes: path, the key that is wrong)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DisposalSite", "Fleet", "FleetConfigError", "Fraction", "default_fleet", "fleet_from_mapping"]

FRACTIONS = ("residual", "packaging", "paper", "organic", "glass")


class FleetConfigError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"fleet configuration {path}: {message}")
        self.path = path


@dataclass(frozen=True)
class DisposalSite:
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Fraction:
    """The trucks of one waste type: ``trucks`` names, each carrying ``capacity_m3`` of compacted waste."""

    name: str
    trucks: tuple[str, ...]
    capacity_m3: float = 20.0
    compaction: float = 3.0
    disposal_sites: tuple[DisposalSite, ...] = ()

    @property
    def capacity_bin_l(self) -> float:
        """Bin litres a truck takes before it must unload."""
        return self.capacity_m3 * 1000.0 * self.compaction


@dataclass(frozen=True)
class Fleet:
    depot: tuple[float, float]
    fractions: Mapping[str, Fraction]
    shift_start_hour: float = 7.0
    shift_hours: float = 8.0
    speed_kmh: float = 25.0
    service_s: float = 90.0
    unload_s: float = 900.0
    crew: int = 2

    def fraction(self, waste_type: str | None) -> Fraction:
        found = self.fractions.get(waste_type or "residual") or self.fractions.get("default")
        if found is None:
            raise KeyError(f"no trucks for waste type {waste_type!r} and no 'default' fraction")
        return found

    def disposal_sites(self, fraction: Fraction) -> tuple[DisposalSite, ...]:
        return fraction.disposal_sites or (DisposalSite("depot", *self.depot),)


def default_fleet(depot: tuple[float, float], trucks_per_fraction: int = 1, **params: Any) -> Fleet:
    """One (or ``trucks_per_fraction``) 20 m3 rear loader per fraction, unloading at the depot."""
    fractions = {
        name: Fraction(
            name,
            tuple(f"{name}-{k + 1}" for k in range(trucks_per_fraction)),
            capacity_m3=30.0 if name == "glass" else 20.0,
            compaction=1.0 if name == "glass" else (2.0 if name == "organic" else 3.0),
        )
        for name in (*FRACTIONS, "default")
    }
    return Fleet(depot, fractions, **params)


def _number(raw: Any, path: str, *, positive: bool = True) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise FleetConfigError(path, f"expected a number, got {raw!r}")
    if positive and raw <= 0:
        raise FleetConfigError(path, f"must be positive, got {raw!r}")
    return float(raw)


def _point(raw: Any, path: str) -> tuple[float, float]:
    if not isinstance(raw, Mapping):
        raise FleetConfigError(path, "expected {lat, lon}")
    lat = _number(raw.get("lat"), f"{path}.lat", positive=False)
    lon = _number(raw.get("lon"), f"{path}.lon", positive=False)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise FleetConfigError(path, f"not a position: {lat}, {lon}")
    return lat, lon


def _fraction(name: str, raw: Any) -> Fraction:
    path = f"fractions.{name}"
    if not isinstance(raw, Mapping):
        raise FleetConfigError(path, "expected a mapping")
    trucks_raw = raw.get("trucks", 1)
    if isinstance(trucks_raw, int) and not isinstance(trucks_raw, bool) and trucks_raw >= 1:
        trucks = tuple(f"{name}-{k + 1}" for k in range(trucks_raw))
    elif isinstance(trucks_raw, list) and trucks_raw and all(isinstance(t, str) and t for t in trucks_raw):
        trucks = tuple(trucks_raw)
        if len(set(trucks)) != len(trucks):
            raise FleetConfigError(f"{path}.trucks", "truck names repeat")
    else:
        raise FleetConfigError(f"{path}.trucks", "expected a count >= 1 or a list of names")
    sites = []
    for k, site in enumerate(raw.get("disposal_sites") or ()):
        lat, lon = _point(site, f"{path}.disposal_sites[{k}]")
        sites.append(DisposalSite(str(site.get("name") or f"{name} disposal {k + 1}"), lat, lon))
    return Fraction(
        name,
        trucks,
        capacity_m3=_number(raw.get("capacity_m3", 20.0), f"{path}.capacity_m3"),
        compaction=_number(raw.get("compaction", 3.0), f"{path}.compaction"),
        disposal_sites=tuple(sites),
    )


def fleet_from_mapping(raw: Any, *, depot: tuple[float, float]) -> Fleet:
    """A :class:`Fleet` from parsed YAML/JSON; ``depot`` unless the mapping names its own."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("fractions"), Mapping) or not raw["fractions"]:
        raise FleetConfigError("fractions", "expected a mapping of waste type -> trucks")
    fractions = {str(name): _fraction(str(name), spec) for name, spec in raw["fractions"].items()}
    names = [t for f in fractions.values() for t in f.trucks]
    if len(set(names)) != len(names):
        raise FleetConfigError("fractions", "a truck name is used by two fractions")
    shift_start = _number(raw.get("shift_start_hour", 7.0), "shift_start_hour", positive=False)
    if not 0 <= shift_start < 24:
        raise FleetConfigError("shift_start_hour", "must be 0 <= hour < 24")
    crew = raw.get("crew", 2)
    if isinstance(crew, bool) or not isinstance(crew, int) or crew < 1:
        raise FleetConfigError("crew", "expected a whole number >= 1")
    return Fleet(
        _point(raw["depot"], "depot") if "depot" in raw else depot,
        fractions,
        shift_start_hour=shift_start,
        shift_hours=_number(raw.get("shift_hours", 8.0), "shift_hours"),
        speed_kmh=_number(raw.get("speed_kmh", 25.0), "speed_kmh"),
        service_s=_number(raw.get("service_s", 90.0), "service_s", positive=False),
        unload_s=_number(raw.get("unload_s", 900.0), "unload_s", positive=False),
        crew=crew,
    )
