"""The HTTP API: FastAPI app factory (:func:`api.main.create_app`), routes, queries, auth and live streams.

The pickup planner (:mod:`stadtpuls.planning.pickups`) is pure and importable without the web stack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .main import create_app

        return create_app
    raise AttributeError(name)
