"""Positions in the simulated town: metre offsets from the centre to WGS84, distances, and street names.

The default town centre is Leipzig's (51.34 N, 12.37 E). The offsets are small (kilometres), so an
equirectangular projection around the centre is accurate to well under a metre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CENTER", "EARTH_M", "STREETS", "Point", "distance_m", "offset", "round_coord"]

EARTH_M = 6_371_008.8
CENTER = (51.34, 12.37)

#: Street names for site names (Leipzig-like, used cyclically).
STREETS = (
    "Karl-Liebknecht-Str.",
    "Eisenbahnstr.",
    "Georg-Schwarz-Str.",
    "Könneritzstr.",
    "Gohliser Str.",
    "Jahnallee",
    "Prager Str.",
    "Riebeckstr.",
    "Zschochersche Str.",
    "Lützner Str.",
    "Dresdner Str.",
    "Bornaische Str.",
    "Delitzscher Str.",
    "Arthur-Hoffmann-Str.",
    "Kochstr.",
    "Stötteritzer Str.",
    "Holbeinstr.",
    "Kurt-Eisner-Str.",
    "Waldstr.",
    "Menckestr.",
    "Wurzner Str.",
    "Torgauer Str.",
    "Merseburger Str.",
    "Brandvorwerkstr.",
    "Thomasiusstr.",
    "Hans-Driesch-Str.",
    "Paunsdorfer Allee",
    "Breite Str.",
    "Ludwigstr.",
    "Kolonnadenstr.",
)


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


def offset(center: tuple[float, float], east_m: np.ndarray | float, north_m: np.ndarray | float) -> tuple[Any, Any]:
    """WGS84 coordinates of points ``east_m`` / ``north_m`` metres from ``center`` (arrays or scalars)."""
    lat0, lon0 = center
    lat = lat0 + np.degrees(np.asarray(north_m, dtype=np.float64) / EARTH_M)
    lon = lon0 + np.degrees(np.asarray(east_m, dtype=np.float64) / (EARTH_M * math.cos(math.radians(lat0))))
    return lat, lon


def distance_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> np.ndarray:
    """Great-circle distance in metres (haversine), broadcasting over arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    returned: np.ndarray = 2 * EARTH_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return returned


def round_coord(x: float) -> float:
    """Coordinates are kept to 6 decimals (about 0.1 m), the resolution of the GPS payloads."""
    return round(float(x), 6)
