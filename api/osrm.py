"""Road distances from an OSRM-compatible routing service (``GET /table/v1/driving/{lon,lat;...}``), and a small
server of the same endpoint for tests and offline installs.

OSRM's table service answers ``{"code": "Ok", "distances": [[metres, ...], ...]}`` when asked with
``annotations=distance``; a pair it cannot route is ``null``. :func:`table_km` turns that into a kilometre matrix
(unroutable pairs fall back to the great-circle estimate times the road factor); :func:`lookup` makes it the
planner's ``km(points)`` function.

Exceptions::

    RuntimeError
     +-- RoutingServiceError   the service failed or answered something else (attributes: url, status)
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stadtpuls.planning import distance_matrix
from stadtpuls.planning.rounds import Distances

__all__ = ["RoutingServiceError", "lookup", "table_app", "table_km"]

TIMEOUT_S = 20.0


class RoutingServiceError(RuntimeError):
    def __init__(self, url: str, status: int | None, message: str) -> None:
        super().__init__(f"routing service {url}: {message}")
        self.url = url
        self.status = status


async def table_km(base_url: str, points: Sequence[tuple[float, float]], *, road_factor: float = 1.3) -> np.ndarray:
    """Road km between every pair of ``(lat, lon)`` points, from the service at ``base_url``."""
    if len(points) < 2:
        return np.zeros((len(points), len(points)))
    coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in points)
    url = f"{base_url.rstrip('/')}/table/v1/driving/{coords}"
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        try:
            res = await client.get(url, params={"annotations": "distance"})
        except httpx.HTTPError as exc:
            raise RoutingServiceError(base_url, None, str(exc)) from exc
    if res.status_code != 200:
        raise RoutingServiceError(base_url, res.status_code, f"HTTP {res.status_code}")
    body = res.json()
    table = body.get("distances") if isinstance(body, dict) else None
    if body.get("code") != "Ok" or not isinstance(table, list) or len(table) != len(points):
        raise RoutingServiceError(base_url, res.status_code, f"unexpected answer (code {body.get('code')!r})")
    metres = np.array([[np.nan if v is None else v for v in row] for row in table], dtype=np.float64)
    if metres.shape != (len(points), len(points)):
        raise RoutingServiceError(base_url, res.status_code, "the table is not square")
    km = metres / 1000.0
    missing = ~np.isfinite(km)
    if missing.any():
        km[missing] = distance_matrix(points, road_factor=road_factor)[missing]
    return km


def lookup(points: Sequence[tuple[float, float]], km: np.ndarray, *, road_factor: float = 1.3) -> Distances:
    """The planner's distance function over a fetched matrix; points it was not fetched for use great-circle."""
    index = {p: i for i, p in enumerate(points)}

    def distances(wanted: Sequence[tuple[float, float]]) -> np.ndarray:
        idx = [index.get(p) for p in wanted]
        if all(i is not None for i in idx):
            sel = np.asarray(idx, dtype=np.int64)
            return km[np.ix_(sel, sel)]
        return distance_matrix(wanted, road_factor=road_factor)

    return distances


def table_app(road_factor: float = 1.3) -> Starlette:
    """An OSRM-compatible ``/table`` service answering with great-circle km times ``road_factor`` (in metres)."""

    async def table(request: Request) -> JSONResponse:
        try:
            pairs = [c.split(",") for c in request.path_params["coords"].split(";")]
            points = [(float(lat), float(lon)) for lon, lat in pairs]
        except ValueError:
            return JSONResponse({"code": "InvalidQuery", "message": "coordinates are lon,lat;lon,lat"}, 400)
        if len(points) < 2:
            return JSONResponse({"code": "InvalidQuery", "message": "at least two coordinates"}, 400)
        metres = np.rint(distance_matrix(points, road_factor=road_factor) * 1000.0)
        waypoints = [{"location": [lon, lat], "name": ""} for lat, lon in points]
        body = {"code": "Ok", "distances": metres.tolist(), "sources": waypoints, "destinations": waypoints}
        return JSONResponse(body)

    return Starlette(routes=[Route("/table/v1/{profile}/{coords:path}", table)])
