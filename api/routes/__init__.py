"""One router module per resource; :data:`api.main.ROUTERS` lists them."""

from __future__ import annotations

__all__: list[str] = []
