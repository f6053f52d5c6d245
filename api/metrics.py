"""Prometheus metrics of the API: requests and latency per route, and gauges read from the database on scrape."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["ApiMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    """One registry per app, so several apps (tests) never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "stadtpuls_api_requests", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "stadtpuls_api_request_duration_seconds",
            "time to answer (streams excluded)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sse_clients = Gauge("stadtpuls_api_sse_clients", "open server-sent event streams", registry=r)
        self.devices = Gauge("stadtpuls_devices", "registered devices", registry=r)
        self.devices_silent = Gauge(
            "stadtpuls_devices_silent", "devices silent past 2.5 times their report interval", registry=r
        )
        self.ingest_lag = Gauge(
            "stadtpuls_ingest_lag_seconds", "now minus the newest uplink's hub receive time", registry=r
        )
        self.uplinks_hour = Gauge("stadtpuls_uplinks_last_hour", "uplinks received in the last hour", registry=r)
        self.dead_letters_hour = Gauge(
            "stadtpuls_dead_letters_last_hour", "dead letters in the last hour", ["stage"], registry=r
        )
        self.bins_over = Gauge(
            "stadtpuls_bins_over_threshold", "bins whose last level is at or over threshold", registry=r
        )
        self.lot_free = Gauge("stadtpuls_parking_free", "free spaces per lot", ["lot_id"], registry=r)
        self.db_up = Gauge("stadtpuls_api_database_up", "1 when the last scrape reached the database", registry=r)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        if not route.endswith("/stream"):
            self.latency.labels(method, route).observe(seconds)

    def set_database(self, stats: dict[str, Any] | None, lots: list[dict[str, Any]]) -> None:
        if stats is None:
            self.db_up.set(0)
            return
        self.db_up.set(1)
        self.devices.set(stats["devices"])
        self.devices_silent.set(stats["devices_silent"])
        self.ingest_lag.set(stats["ingest_lag_s"] if stats["ingest_lag_s"] is not None else float("nan"))
        self.uplinks_hour.set(stats["uplinks_last_hour"])
        self.bins_over.set(stats["bins_over_threshold"])
        self.dead_letters_hour.clear()
        for stage, n in stats["dead_letters_last_hour"].items():
            self.dead_letters_hour.labels(stage).set(n)
        self.lot_free.clear()
        for lot in lots:
            self.lot_free.labels(lot["lot_id"]).set(lot["free"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
