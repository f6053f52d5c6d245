"""The HTTP API: FastAPI app factory (:func:`api.main.create_app`), routes, queries, auth and live streams.

Pickup planning is not here: the routes call :mod:`stadtpuls.planning`, which is pure and shared with the benchmarks
and the dashboards.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .main import create_app

        return create_app
    raise AttributeError(name)
