"""Devices the hub does not know: a neighbour's sensors that share the network server application, or devices
that were never registered. They send valid payloads of a reference model; the hub must keep their raw uplinks
and dead-letter them as unknown devices.
"""

from __future__ import annotations

import base64

from .city import City, Device, stream
from .sessions import Session

__all__ = ["Rogues"]


class Rogues:
    """Two unknown devices per (model, network server), created when first needed, each with its own session."""

    def __init__(self, city: City, seed: int, start_us: int) -> None:
        self.city = city
        self.rng = stream(seed ^ (start_us // 1_000_000 & 0xFFFFFFFF), "rogues")
        self.pool: dict[tuple[str, str], list[tuple[Device, Session]]] = {}
        self.sent = 0

    def next(self, like: Device) -> tuple[Device, Session, int]:
        """An unknown device of ``like``'s model and network server, its session and its next frame counter."""
        key = (like.model.key, like.lns)
        pool = self.pool.get(key)
        if pool is None:
            pool = []
            for k in range(2):
                eui = like.model.eui_prefix + self.rng.bytes(5).hex()
                while eui in self.city.device_by_eui:
                    eui = like.model.eui_prefix + self.rng.bytes(5).hex()
                raw = self.rng.bytes(20)
                device = Device(-1, eui, like.model, f"unregistered {like.model.key} {k + 1}", "",
                                f"{like.model.key}-{eui[-6:]}-unregistered", like.lat, like.lon, like.lns,
                                like.report_interval_s)
                session = Session(("26" if like.lns == "tts" else "01") + raw[:3].hex(),
                                  base64.b64encode(raw[4:20]).decode(), int(self.rng.integers(0, 500)), 0)
                pool.append((device, session))
            self.pool[key] = pool
        device, session = pool[self.sent % len(pool)]
        self.sent += 1
        f_cnt = session.f_cnt
        session.f_cnt += 1
        return device, session, f_cnt
