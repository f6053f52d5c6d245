"""Helpers of the API tests: an in-process client running the app's lifespan, a seeder writing sites, devices and
readings with plain SQL inserts, test keys and time helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import psycopg
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from stadtpuls.ingest.envelopes.keys import stored_key
from stadtpuls.settings import Settings

OPERATOR_KEY = "operator-test-key-0123456789"
ADMIN_KEY = "admin-test-key-0123456789"
OP = {"X-API-Key": OPERATOR_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "operator_key": OPERATOR_KEY,
        "admin_key": ADMIN_KEY,
        "rate_limit_per_minute": 0,
        "key_failures_per_minute": 0,
        "api_cache_ttl": 0,
        "live_poll_interval": 60,
        "timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return Settings(**values)


class ApiClient:
    """A synchronous client for the app in-process (httpx ASGI transport), its lifespan run in an event loop
    on a background thread; exceptions inside the app reach the test."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal()
        self.portal = self._portal_cm.__enter__()
        self._life = self.portal.wrap_async_context_manager(app.router.lifespan_context(app))
        self._life.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.portal.call(partial(self._client.request, method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        try:
            self.portal.call(self._client.aclose)
            self._life.__exit__(None, None, None)
        finally:
            self._portal_cm.__exit__(None, None, None)


_frozen: datetime | None = None


def now() -> datetime:
    """The current time in whole seconds; inside :func:`fixed_now` the one instant the block started at."""
    return _frozen if _frozen is not None else datetime.now(UTC).replace(microsecond=0)


@contextmanager
def fixed_now() -> Iterator[datetime]:
    """One "now" for a test: every :func:`now` and :func:`hours_ago` in the block answers from the same instant,
    so a time the test seeds ("10 hours ago") and the one it expects back are computed from one clock reading
    (the API test fixtures wrap each test in it)."""
    global _frozen
    outer = _frozen
    _frozen = now()
    try:
        yield _frozen
    finally:
        _frozen = outer


class Seeder:
    """Plain SQL inserts into the session database."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self._eui = 0

    def close(self) -> None:
        self.conn.close()

    def eui(self) -> str:
        self._eui += 1
        return f"{0xA000000000000000 + self._eui:016x}"

    def site(self, site_id: str, kind: str, **fields: Any) -> str:
        fields.setdefault("name", site_id.replace("-", " ").title())
        if "params" in fields:
            fields["params"] = Jsonb(fields["params"])
        cols = ["site_id", "kind", *fields]
        self.conn.execute(
            f"INSERT INTO sites ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
            [site_id, kind, *fields.values()],
        )
        return site_id

    def device(self, site_id: str | None, codec: str = "nwave/nps405", interval: int = 3600, **fields: Any) -> str:
        dev = fields.pop("dev_eui", None) or self.eui()
        self.conn.execute(
            "INSERT INTO devices (dev_eui, codec, site_id, report_interval_s, name) VALUES (%s, %s, %s, %s, %s)",
            (dev, codec, site_id, interval, fields.get("name", "")),
        )
        return dev

    def lot(
        self,
        lot_id: str,
        spaces: int,
        *,
        capacity: int | None = None,
        interval: int = 3600,
        lat: float = 51.34,
        lon: float = 12.37,
    ) -> list[str]:
        """A lot with ``spaces`` sensored spaces; returns the sensors' DevEUIs in space order."""
        self.site(lot_id, "lot", capacity=capacity if capacity is not None else spaces, lat=lat, lon=lon)
        devs = []
        for k in range(spaces):
            space = self.site(f"{lot_id}-s{k:03d}", "space", parent_id=lot_id)
            devs.append(self.device(space, interval=interval))
        return devs

    def park(self, dev_eui: str, time: datetime, occupied: bool) -> None:
        self.conn.execute(
            """INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied)
               SELECT %s, d.dev_eui, d.site_id, s.parent_id, %s FROM devices d JOIN sites s ON s.site_id = d.site_id
               WHERE d.dev_eui = %s""",
            (time, occupied, dev_eui),
        )
        self._refresh("parking_lot", dev_eui, time)

    def _refresh(self, kind: str, dev_eui: str, time: datetime) -> None:
        """Keep the rollups current as the ingest does after a batch (migrations 0008, 0019)."""
        self.conn.execute(
            "SELECT rollup_refresh(%s, ARRAY[s.parent_id], ARRAY[%s::timestamptz], ARRAY[%s::timestamptz])"
            " FROM devices d JOIN sites s ON s.site_id = d.site_id WHERE d.dev_eui = %s AND s.parent_id IS NOT NULL",
            (kind, time, time, dev_eui),
        )

    def bin(
        self,
        site_id: str,
        *,
        lat: float = 51.33,
        lon: float = 12.38,
        threshold: float = 80,
        waste_type: str = "residual",
        interval: int = 3600,
    ) -> str:
        self.site(
            site_id,
            "bin",
            lat=lat,
            lon=lon,
            threshold_pct=threshold,
            waste_type=waste_type,
            depth_mm=1200,
            full_mm=200,
            volume_l=1100,
        )
        return self.device(site_id, codec="milesight-iot/em310-udl", interval=interval)

    def levels(
        self, dev_eui: str, rows: list[tuple[datetime, float]], battery_v: float = 3.6, battery_pct: float | None = 90
    ) -> None:
        site = self.conn.execute("SELECT site_id FROM devices WHERE dev_eui = %s", (dev_eui,)).fetchone()
        with self.conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO bin_levels (time, dev_eui, site_id, fill_pct, distance_mm, battery_v, battery_pct)
                   VALUES (%s, %s, %s, %s, %s, %s, %s)""",
                [(t, dev_eui, site[0] if site else None, f, 1200 - 10 * f, battery_v, battery_pct) for t, f in rows],
            )
        if site and rows:  # the bin's rollups, as the ingest keeps them after a batch (migration 0019)
            times = [t for t, _ in rows]
            self.conn.execute(
                "SELECT rollup_refresh('bin_fill', ARRAY[%s], ARRAY[%s::timestamptz], ARRAY[%s::timestamptz])",
                (site[0], min(times), max(times)),
            )

    def passengers(
        self,
        dev_eui: str,
        time: datetime,
        *,
        pax_in: int | None = None,
        pax_out: int | None = None,
        pax_count: int | None = None,
        stop_id: str | None = None,
    ) -> None:
        self.conn.execute(
            """INSERT INTO passenger_counts (time, dev_eui, site_id, line_id, stop_id, pax_in, pax_out, pax_count)
               SELECT %s, d.dev_eui, d.site_id, s.parent_id, %s, %s, %s, %s
               FROM devices d JOIN sites s ON s.site_id = d.site_id WHERE d.dev_eui = %s""",
            (time, stop_id, pax_in, pax_out, pax_count, dev_eui),
        )
        self._refresh("line_load", dev_eui, time)

    def uplink(
        self,
        dev_eui: str,
        time: datetime,
        *,
        f_cnt: int = 1,
        rssi: float = -100.0,
        snr: float = 5.0,
        received_at: datetime | None = None,
        payload: bytes = b"\x01\x02",
    ) -> None:
        self.conn.execute(
            """INSERT INTO uplinks (time, dedup_key, dev_eui, f_cnt, f_port, payload, rssi, snr, dr, gateways, lns,
                                    received_at)
               VALUES (%s, %s, %s, %s, 1, %s, %s, %s, 5, 1, 'tts', %s)""",
            (time, stored_key(uuid.uuid4().bytes), dev_eui, f_cnt, payload, rssi, snr, received_at or time),
        )

    def dead_letter(
        self,
        stage: str,
        reason: str,
        *,
        received_at: datetime | None = None,
        dev_eui: str | None = None,
        payload: bytes = b"{not json",
    ) -> None:
        self.conn.execute(
            """INSERT INTO dead_letters (received_at, topic, stage, reason, dev_eui, lns, payload)
               VALUES (%s, 'v3/app@tenant/devices/x/up', %s, %s, %s, 'tts', %s)""",
            (received_at or now(), stage, reason, dev_eui, payload),
        )


def hours_ago(h: float) -> datetime:
    return now() - timedelta(hours=h)
