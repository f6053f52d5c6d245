"""Every panel of every committed dashboard, expanded the way Grafana expands it, run against a week of a city.

Expansion (see ``dashboards/macros.py``): the time range is the week, ``$__interval`` is what Grafana would pick
for a 1000-pixel-wide panel over it (at least the panel's minimum interval), every multi-value variable holds all
the values its own query returns (the dashboards open with "All"), constants hold their values, and
``$__timeGroup`` uses ``time_bucket`` exactly when the database has TimescaleDB (the datasource option).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from stadtpuls.alerts.kinds import KINDS
from stadtpuls.dashboards.build import DASHBOARD_DIR, PROVISIONING
from stadtpuls.dashboards.macros import QueryContext, auto_interval, expand

TZ = ZoneInfo("Europe/Berlin")
FILES = sorted((PROVISIONING / DASHBOARD_DIR).glob("*.json"))
T, N, S, B = "time", "number", "text", "bool"
TG = "time or epoch"  # $__timeGroupAlias: time_bucket() gives timestamptz, floor(extract(epoch ...)) a number

# Columns and kinds each panel must return. A new or changed panel needs its line here.
EXPECTED: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("stadtpuls-waste", "Full bins"): [("bins_over_threshold", N)],
    ("stadtpuls-waste", "Average fill now"): [("average_fill_pct", N)],
    ("stadtpuls-waste", "Sensor alerts"): [("sensor_alerts", N)],
    ("stadtpuls-waste", "Bins by fill level"): [
        ("bin", S),
        ("name", S),
        ("waste_type", S),
        ("latitude", N),
        ("longitude", N),
        ("fill_pct", N),
        ("last_reading", T),
    ],
    ("stadtpuls-waste", "Bins over threshold"): [
        ("bin", S),
        ("name", S),
        ("waste_type", S),
        ("fill_pct", N),
        ("threshold_pct", N),
        ("last_reading", T),
    ],
    ("stadtpuls-waste", "Predicted full within 7 days"): [
        ("bin", S),
        ("name", S),
        ("waste_type", S),
        ("fill_pct", N),
        ("pct_per_day", N),
        ("threshold_pct", N),
        ("predicted_full", T),
    ],
    ("stadtpuls-waste", "Fill history"): [("time", TG), ("metric", S), ("fill_pct", N)],
    ("stadtpuls-waste", "Pickups per day"): [("time", T), ("metric", S), ("pickups", N)],
    ("stadtpuls-waste", "Battery and silence alerts"): [
        ("bin", S),
        ("name", S),
        ("dev_eui", S),
        ("codec", S),
        ("last_reading", T),
        ("battery_v", N),
        ("battery_pct", N),
        ("alert", S),
    ],
    ("stadtpuls-parking", "Free spaces now"): [
        ("lot", S),
        ("free", N),
        ("occupied", N),
        ("unknown", N),
        ("spaces", N),
        ("occupancy_pct", N),
        ("last_update", T),
    ],
    ("stadtpuls-parking", "Lots now"): [
        ("lot", S),
        ("free", N),
        ("occupied", N),
        ("unknown", N),
        ("spaces", N),
        ("occupancy_pct", N),
        ("last_update", T),
    ],
    ("stadtpuls-parking", "Free spaces over time"): [("time", TG), ("metric", S), ("free", N)],
    ("stadtpuls-parking", "Occupancy by weekday and hour"): [("weekday", S)] + [(f"{h:02d}", N) for h in range(24)],
    ("stadtpuls-buses", "Occupancy per line now"): [
        ("line", S),
        ("passengers", N),
        ("capacity", N),
        ("occupancy_pct", N),
        ("vehicles", N),
    ],
    ("stadtpuls-buses", "Vehicles now"): [
        ("line", S),
        ("vehicle", S),
        ("name", S),
        ("passengers", N),
        ("capacity", N),
        ("occupancy_pct", N),
        ("last_stop", S),
        ("last_count", T),
    ],
    ("stadtpuls-buses", "Boardings per hour by line"): [("time", TG), ("metric", S), ("boardings", N)],
    ("stadtpuls-buses", "Usage by stop"): [
        ("line", S),
        ("seq", N),
        ("stop", S),
        ("boardings", N),
        ("alightings", N),
        ("hours_served", N),
    ],
    ("stadtpuls-buses", "Boardings by stop and hour of day"): [("stop", S)] + [(f"{h:02d}", N) for h in range(24)],
    ("stadtpuls-fleet", "Devices"): [("devices", N)],
    ("stadtpuls-fleet", "Heard in the last hour"): [("devices_heard", N)],
    ("stadtpuls-fleet", "Uplinks"): [("uplinks", N)],
    ("stadtpuls-fleet", "Dead letters"): [("dead_letters", N)],
    ("stadtpuls-fleet", "Uplinks per minute"): [("time", TG), ("metric", S), ("uplinks_per_min", N)],
    ("stadtpuls-fleet", "Ingest lag"): [("time", TG), ("p50", N), ("p95", N), ("max", N)],
    ("stadtpuls-fleet", "Active alerts per rule"): [("rule_id", S), ("active", N)],
    ("stadtpuls-fleet", "Active alerts"): [
        ("alert_id", N),
        ("rule_id", S),
        ("severity", S),
        ("state", S),
        ("subject", S),
        ("site_id", S),
        ("message", S),
        ("opened_at", T),
    ],
    ("stadtpuls-fleet", "Silent devices"): [
        ("dev_eui", S),
        ("name", S),
        ("codec", S),
        ("kind", S),
        ("site_id", S),
        ("report_interval_s", N),
        ("last_uplink", T),
        ("silent_hours", N),
        ("last_rssi", N),
    ],
    ("stadtpuls-fleet", "RSSI distribution"): [("rssi_dbm", S), ("uplinks", N)],
    ("stadtpuls-fleet", "SNR distribution"): [("snr_db", S), ("uplinks", N)],
    ("stadtpuls-fleet", "Dead letters by stage"): [("time", TG), ("metric", S), ("dead_letters", N)],
    ("stadtpuls-fleet", "Dead letters by reason"): [
        ("stage", S),
        ("reason", S),
        ("messages", N),
        ("devices", N),
        ("last_seen", T),
        ("last_topic", S),
    ],
    ("stadtpuls-fleet", "Frame-counter gaps"): [("time", TG), ("missing_frames", N), ("gaps", N)],
    ("stadtpuls-fleet", "Devices with missing frames"): [
        ("dev_eui", S),
        ("name", S),
        ("codec", S),
        ("gaps", N),
        ("missing_frames", N),
        ("uplinks", N),
        ("loss_pct", N),
        ("last_gap", T),
    ],
    ("stadtpuls-fleet", "TimescaleDB jobs"): [
        ("job_id", N),
        ("job", S),
        ("target", S),
        ("status", S),
        ("last_run", T),
        ("failures", N),
        ("next_start", T),
    ],
}


def _panels(sql: bool) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(dashboard, panel) of every panel whose queries are SQL (``sql``) or PromQL (not ``sql``)."""
    out = []
    for path in FILES:
        dash = json.loads(path.read_text())
        out.extend((dash, p) for p in dash["panels"] if all(("rawSql" in t) == sql for t in p["targets"]))
    return out


PANELS = _panels(sql=True)
PROMETHEUS_PANELS = _panels(sql=False)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return B
    if isinstance(value, int | float | Decimal):
        return N
    if isinstance(value, datetime):
        return T
    if isinstance(value, str):
        return S
    return type(value).__name__


def _variables(conn: psycopg.Connection, dash: dict[str, Any], ctx: QueryContext) -> dict[str, Any]:
    """Constants as they are; query variables with "All" selected: every value their query returns."""
    values: dict[str, Any] = {}
    for var in dash["templating"]["list"]:
        if var["type"] == "constant":
            values[var["name"]] = var["query"]
        elif var["type"] == "query":
            cur = conn.execute(expand(var["query"], ctx))
            names = [c.name for c in cur.description or []]
            col = names.index("__value") if "__value" in names else 0
            found = [str(row[col]) for row in cur.fetchall()]
            assert found, f"variable ${var['name']} of {dash['uid']} has no values"
            values[var["name"]] = found if var.get("multi") or var.get("includeAll") else found[0]
    return values


def test_every_panel_has_an_expected_shape() -> None:
    built = {(d["uid"], p["title"]) for d, p in PANELS}
    assert built == set(EXPECTED), "panels and EXPECTED differ"
    assert len(PANELS) + len(PROMETHEUS_PANELS) == sum(len(json.loads(f.read_text())["panels"]) for f in FILES)


def test_prometheus_panels_chart_metrics_the_ingest_exports() -> None:
    from stadtpuls.ingest.metrics import Metrics

    exported = {s.name for m in Metrics().registry.collect() for s in m.samples}
    assert PROMETHEUS_PANELS
    for _, panel in PROMETHEUS_PANELS:
        for target in panel["targets"]:
            names = set(re.findall(r"\bstadtpuls_\w+", target["expr"]))
            assert names and names <= exported, f"{panel['title']}: {names - exported}"


def _run(
    url: str,
    dash: dict[str, Any],
    panel: dict[str, Any],
    start: datetime,
    end: datetime,
) -> list[tuple[list[str], list[tuple[Any, ...]], str]]:
    """Each target of a panel as Grafana would run it: (columns, rows, format)."""
    out = []
    with psycopg.connect(url) as conn:
        conn.execute("SET statement_timeout = '20s'")
        tsdb = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone() is not None
        ctx = QueryContext(start=start, end=end, timescaledb=tsdb)
        ctx = QueryContext(
            start=start,
            end=end,
            timescaledb=tsdb,
            variables=_variables(conn, dash, ctx),
            interval=auto_interval(start, end, min_interval=panel.get("interval")),
        )
        for tgt in panel["targets"]:
            cur = conn.execute(expand(tgt["rawSql"], ctx))
            out.append(([c.name for c in cur.description or []], cur.fetchall(), tgt["format"]))
    return out


def _rows(week: Any, uid: str, title: str) -> list[dict[str, Any]]:
    dash, panel = next((d, p) for d, p in PANELS if d["uid"] == uid and p["title"] == title)
    columns, rows, _ = _run(week.url, dash, panel, week.start, week.end)[0]
    return [dict(zip(columns, r, strict=True)) for r in rows]


@pytest.mark.parametrize(("dash", "panel"), PANELS, ids=[f"{d['uid'][10:]}:{p['title']}" for d, p in PANELS])
def test_panel_sql_returns_rows_of_expected_shape(city_week, dash: dict[str, Any], panel: dict[str, Any]) -> None:
    expected = EXPECTED[(dash["uid"], panel["title"])]
    for columns, rows, fmt in _run(city_week.url, dash, panel, city_week.start, city_week.end):
        assert columns == [name for name, _ in expected]
        assert rows, "no rows"
        for i, (name, kind) in enumerate(expected):
            kinds = {_kind(r[i]) for r in rows if r[i] is not None}
            assert kinds <= ({T, N} if kind == TG else {kind}), f"{name}: {kinds} instead of {kind}"
        if fmt == "time_series":
            assert columns[0] == "time"
            times = [r[0] if isinstance(r[0], datetime) else datetime.fromtimestamp(float(r[0]), UTC) for r in rows]
            assert times == sorted(times), "time series rows must be sorted by time"
            assert city_week.start - timedelta(days=1) <= times[0] and times[-1] <= city_week.end


def test_alert_panels_find_the_planted_faults(planted_week) -> None:
    alerts = {r["bin"]: r["alert"] for r in _rows(planted_week, "stadtpuls-waste", "Battery and silence alerts")}
    assert alerts == {"bin-005": "battery low", "bin-007": "silent", "bin-010": "battery low"}
    silent = {r["site_id"] for r in _rows(planted_week, "stadtpuls-fleet", "Silent devices")}
    assert silent == {None, "bin-007", "lot-zoo-s01"}  # the spare device was never heard
    assert _rows(planted_week, "stadtpuls-waste", "Sensor alerts") == [{"sensor_alerts": 3}]
    # the alerts service, evaluated at the week's end, sees the same faults
    active = {(r["rule_id"], r["site_id"]) for r in _rows(planted_week, "stadtpuls-fleet", "Active alerts")}
    assert {("battery-low", "bin-005"), ("battery-low", "bin-010"), ("device-silent", "bin-007")} <= active
    per_rule = {r["rule_id"]: r["active"] for r in _rows(planted_week, "stadtpuls-fleet", "Active alerts per rule")}
    assert per_rule["battery-low"] == 2 and len(per_rule) == len(KINDS)


def test_pickups_per_day_count_every_emptying(planted_week) -> None:
    rows = _rows(planted_week, "stadtpuls-waste", "Pickups per day")
    hour = timedelta(hours=1)
    truth = [t for _, t in planted_week.emptyings if t - (t - planted_week.start) % hour >= planted_week.start]
    assert sum(r["pickups"] for r in rows) == len(truth)
    assert all(r["time"].astimezone(TZ).time() == time(0) for r in rows), "days start at local midnight"


def test_free_spaces_now_count_silent_sensors_as_unknown(planted_week) -> None:
    city_week = planted_week
    with psycopg.connect(city_week.url) as conn:
        latest = conn.execute(
            """SELECT DISTINCT ON (p.dev_eui) l.name, p.occupied, p.time > %s - interval '75 minutes'
               FROM parking_events p JOIN sites l ON l.site_id = p.lot_id
               ORDER BY p.dev_eui, p.time DESC""",
            (city_week.end,),
        ).fetchall()
    truth: dict[str, dict[str, int]] = {}
    for lot, occupied, fresh in latest:
        state = "unknown" if not fresh else ("occupied" if occupied else "free")
        counts = truth.setdefault(lot, {"free": 0, "occupied": 0, "unknown": 0})
        counts[state] += 1
    rows = _rows(city_week, "stadtpuls-parking", "Lots now")
    assert {r["lot"]: {k: r[k] for k in ("free", "occupied", "unknown")} for r in rows} == truth
    assert truth["Zoo"]["unknown"] == 1
