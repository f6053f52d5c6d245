from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apitest import OP, ApiClient, Seeder, hours_ago, now

from api.routes.waste import load_fleet
from api.waste import DEFAULT_VOLUME_L
from stadtpuls.planning import BinState, day_start
from stadtpuls.planning.horizon import URGENT_PCT, plan_day
from stadtpuls.planning.pickups import next_service_day
from stadtpuls.planning.rounds import great_circle
from stadtpuls.settings import Settings


def _fill(seed: Seeder, site: str, level_now: float, rate_per_day: float, *, hours: int = 72, **kw: object) -> str:
    """A bin whose hourly readings rise ``rate_per_day`` and reach ``level_now`` at the last one (now)."""
    dev = seed.bin(site, **kw)  # type: ignore[arg-type]
    rows = [(hours_ago(h), level_now - rate_per_day * h / 24) for h in range(hours, -1, -1)]
    seed.levels(dev, [(t, max(f, 0.0)) for t, f in rows])
    return dev


def _city(seed: Seeder) -> None:
    _fill(seed, "bin-full", 85, 5, lat=51.35, lon=12.38)
    _fill(seed, "bin-soon", 60, 25, lat=51.33, lon=12.36)
    _fill(seed, "bin-low", 5, 1, lat=51.32, lon=12.40)
    _fill(seed, "bin-mid", 40, 3, lat=51.31, lon=12.35)


def test_bins_list_fill_rate_prediction_and_flags(client: ApiClient, seed: Seeder) -> None:
    _city(seed)
    dev = seed.bin("bin-quiet", lat=51.3, lon=12.3)
    seed.levels(dev, [(hours_ago(10), 30.0), (hours_ago(9), 31.0)], battery_v=3.0, battery_pct=None)
    r = client.get("/api/v1/waste/bins", headers=OP)
    assert r.status_code == 200, r.text
    bins = {b["site_id"]: b for b in r.json()["data"]}
    assert r.json()["count"] == 5
    soon = bins["bin-soon"]
    assert soon["rate_per_day"] == pytest.approx(25, abs=0.5)
    assert soon["fill_pct"] == pytest.approx(60, abs=1.5)
    full_at = datetime.fromisoformat(soon["predicted_full_at"])
    assert full_at - now() == pytest.approx(timedelta(hours=20 / 25 * 24), abs=timedelta(hours=1.5))
    assert bins["bin-full"]["flags"] == {"battery_low": False, "silent": False, "over_threshold": True}
    quiet = bins["bin-quiet"]["flags"]
    assert quiet["silent"] is True and quiet["battery_low"] is True and quiet["over_threshold"] is False
    only = client.get("/api/v1/waste/bins", headers=OP, params={"flag": "over_threshold"}).json()
    assert [b["site_id"] for b in only["data"]] == ["bin-full"]


def test_times_computed_at_two_moments_of_a_test_agree() -> None:
    first = hours_ago(10)
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)  # past the next whole second of the wall clock
    assert hours_ago(10) == first
    assert now() - timedelta(hours=10) == first


def test_bin_after_emptying_fits_only_the_new_cycle(client: ApiClient, seed: Seeder) -> None:
    dev = seed.bin("bin-e")
    before = [(hours_ago(h), 50 + (48 - h) * 1.0) for h in range(48, 10, -1)]  # 24 %/day up to ~87 %
    after = [(hours_ago(h), 2 + (10 - h) * 0.25) for h in range(10, -1, -1)]  # emptied 10 h ago, 6 %/day
    seed.levels(dev, before + after)
    b = client.get("/api/v1/waste/bins/bin-e", headers=OP).json()
    assert b["rate_per_day"] == pytest.approx(6, abs=0.3)
    assert datetime.fromisoformat(b["emptied_at"]) == hours_ago(10)
    assert b["last_fill_pct"] == pytest.approx(4.5)


def test_unknown_bin_is_404_and_bad_flag_422(client: ApiClient, seed: Seeder) -> None:
    assert client.get("/api/v1/waste/bins/none", headers=OP).status_code == 404
    assert client.get("/api/v1/waste/bins/none/history", headers=OP).status_code == 404
    assert client.get("/api/v1/waste/bins", headers=OP, params={"flag": "smelly"}).status_code == 422


def test_bin_history_raw_hourly_and_daily(client: ApiClient, seed: Seeder) -> None:
    dev = seed.bin("bin-h")
    base = now().replace(minute=0, second=0) - timedelta(hours=5)
    seed.levels(dev, [(base + timedelta(minutes=20 * k), 10.0 + k) for k in range(12)])
    url = "/api/v1/waste/bins/bin-h/history"
    raw = client.get(url, headers=OP, params={"bucket": "raw"}).json()
    assert raw["count"] == 12 and raw["data"][0]["fill_pct"] == 10.0
    hourly = client.get(url, headers=OP, params={"bucket": "hour"}).json()
    assert hourly["count"] == 4
    assert [h["fill_pct"] for h in hourly["data"]] == [12.0, 15.0, 18.0, 21.0]
    assert [h["readings"] for h in hourly["data"]] == [3, 3, 3, 3]
    assert hourly["data"][1]["fill_min"] == 13.0 and hourly["data"][1]["fill_max"] == 15.0
    assert [h["fill_avg"] for h in hourly["data"]] == [11.0, 14.0, 17.0, 20.0]
    daily = client.get(url, headers=OP, params={"bucket": "day", "start": (base - timedelta(days=2)).isoformat()})
    assert daily.status_code == 200
    days = daily.json()["data"]
    assert sum(d["readings"] for d in days) == 12
    for d in days:
        local = datetime.fromisoformat(d["time"]).astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (0, 0)
    bad = client.get(url, headers=OP, params={"start": base.isoformat(), "end": (base - timedelta(days=1)).isoformat()})
    assert bad.status_code == 422
    year = {"start": (base - timedelta(days=300)).isoformat(), "end": base.isoformat()}  # buckets from the rollups
    assert client.get(url, headers=OP, params={**year, "bucket": "day"}).status_code == 200
    assert client.get(url, headers=OP, params={**year, "bucket": "raw"}).status_code == 422


def _next_day() -> date:
    return next_service_day(now().astimezone(ZoneInfo("Europe/Berlin")).date(), [0, 1, 2, 3, 4])


def test_pickup_plan_selects_full_and_soon_full_bins_in_route_order(client: ApiClient, seed: Seeder) -> None:
    _city(seed)
    day = _next_day()
    r = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day.isoformat()})
    assert r.status_code == 200, r.text
    plan = r.json()
    assert plan["date"] == day.isoformat()
    assert plan["next_service_date"] == next_service_day(day, [0, 1, 2, 3, 4]).isoformat()
    assert plan["bins_considered"] == 4
    assert {s["site_id"] for s in plan["data"]} == {"bin-full", "bin-soon"}
    assert [s["seq"] for s in plan["data"]] == [1, 2]
    reasons = {s["site_id"]: s["reason"] for s in plan["data"]}
    assert reasons["bin-full"] == "over_threshold"
    for stop in plan["data"]:
        assert stop["expected_fill_pct"] >= stop["fill_pct"]
        assert datetime.fromisoformat(stop["arrival"]) >= datetime.fromisoformat(plan["start"])
    assert plan["distance_km"] > sum(s["leg_km"] for s in plan["data"])  # includes the way back
    assert plan["depot"] == {"lat": 51.3397, "lon": 12.3731}
    default = client.get("/api/v1/waste/pickups", headers=OP).json()
    assert default["date"] == day.isoformat()


def test_pickup_plan_exports_csv_and_geojson(client: ApiClient, seed: Seeder) -> None:
    _city(seed)
    day = _next_day().isoformat()
    r = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day, "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="pickups-{day}.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["seq"] for row in rows] == ["1", "2"] and {row["site_id"] for row in rows} == {"bin-full", "bin-soon"}
    g = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day, "format": "geojson"})
    assert g.headers["content-type"].startswith("application/geo+json")
    features = g.json()["features"]
    roles = [f["properties"]["role"] for f in features]
    assert roles == ["depot", "route", "disposal", "stop", "stop"]  # one truck; unloads at the depot by default
    line = features[1]["geometry"]["coordinates"]
    assert line[0] == line[-1] == [12.3731, 51.3397] and len(line) == 5  # depot, 2 bins, unloading, depot
    assert features[1]["properties"]["truck"] == "residual-1"


def test_pickup_plan_for_a_past_day_uses_what_was_known_then(client: ApiClient, seed: Seeder) -> None:
    _city(seed)
    day = (now() - timedelta(days=20)).date()
    plan = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day.isoformat()}).json()
    assert plan["bins_considered"] == 0 and plan["count"] == 0
    assert datetime.fromisoformat(plan["as_of"]) == datetime.fromisoformat(plan["start"])


@pytest.mark.parametrize(
    "params",
    [
        {"date": "tomorrow"},
        {"date": "2025-02-30"},
        {"format": "pdf"},
        {"date": "2999-01-01"},
        {"date": "1999-01-01"},
    ],
)
def test_pickup_plan_bad_parameters(client: ApiClient, params: dict[str, str]) -> None:
    r = client.get("/api/v1/waste/pickups", headers=OP, params=params)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_pickup_plan_honours_pins_and_skips_and_gives_reasons(client: ApiClient, seed: Seeder) -> None:
    _city(seed)
    day = _next_day().isoformat()
    params: dict[str, str | list[str]] = {"date": day, "pin": ["bin-low"], "skip": ["bin-soon"]}
    plan = client.get("/api/v1/waste/pickups", headers=OP, params=params).json()
    stops = {s["site_id"]: s for s in plan["data"]}
    assert set(stops) == {"bin-full", "bin-low"}
    assert stops["bin-low"]["reason"] == "pinned" and stops["bin-low"]["note"] == "pinned by the operator"
    assert stops["bin-full"]["note"] == "over threshold"
    assert plan["skipped"] == ["bin-soon"]
    for truck in plan["trucks"]:
        kinds = [v["kind"] for v in truck["visits"]]
        assert kinds[0] == kinds[-1] == "depot" and "disposal" in kinds
    assert {s["truck"] for s in plan["data"]} <= {t["truck"] for t in plan["trucks"]}
    assert plan["crew_hours"] > 0
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/api/v1/waste/pickups", headers=OP, params={**params, "format": "csv"}).text)
        )
    )
    assert {r["site_id"]: r["note"] for r in rows} == {
        "bin-full": "over threshold",
        "bin-low": "pinned by the operator",
    }
    both = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day, "pin": "bin-low", "skip": "bin-low"})
    assert both.status_code == 422
    unknown = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day, "pin": "bin-nowhere"})
    assert unknown.status_code == 422 and "bin-nowhere" in unknown.json()["detail"]


def test_pickup_plan_follows_the_fleet_file(settings: Settings, make_client: Any, seed: Seeder) -> None:
    _city(seed)
    example = Path(__file__).parents[2] / "deploy" / "fleet.example.yaml"
    client = make_client(settings.model_copy(update={"fleet_file": example}))
    plan = client.get("/api/v1/waste/pickups", headers=OP, params={"date": _next_day().isoformat()}).json()
    assert {t["truck"] for t in plan["trucks"]} <= {"R1", "R2", "packaging-1", "paper-1", "organic-1", "glass-1"}
    assert {d["name"] for d in plan["disposal_sites"]} >= {"Waste-to-energy plant", "Composting site"}
    for truck in plan["trucks"]:
        assert truck["visits"][-2]["kind"] == "disposal" and truck["visits"][-2]["name"] != "depot"
        assert datetime.fromisoformat(truck["start"]).hour == 6
    broken = settings.model_copy(update={"fleet_file": Path(__file__)})  # not a fleet
    r = make_client(broken).get("/api/v1/waste/pickups", headers=OP)
    assert r.status_code == 500 and "fleet configuration" in r.json()["detail"]


def _old_plan(client: ApiClient, settings: Settings, day: date, as_of: datetime) -> list[tuple[Any, ...]]:
    """``day``'s stops as the API planned them before it told silent bins apart: every bin's state at ``as_of``
    (its fitted level as the bins endpoint reports it then) and no ``now`` for the planner."""
    statuses = client.get("/api/v1/waste/bins", headers=OP, params={"at": as_of.isoformat()}).json()["data"]
    states = [
        BinState(
            b["site_id"],
            b["lat"],
            b["lon"],
            b["fill_pct"],
            b["rate_per_day"],
            as_of,
            b["threshold_pct"],
            b["waste_type"],
            DEFAULT_VOLUME_L,  # the seeded bins state no volume
        )
        for b in statuses
    ]
    plan = plan_day(
        states,
        load_fleet(settings),
        day=day,
        service_days=settings.service_days,
        tz=settings.timezone,
        km=great_circle(settings.road_factor),
        solver=settings.route_solver,
    )
    return [
        (v.name, r.truck, c.why, c.bin.level_pct, round(c.bin.level_at(v.arrival), 1), v.arrival, c.crossing_at)
        for r in plan.fleet.routes
        for v, c in ((v, plan.choices[v.name]) for v in r.bins)
    ]


def test_pickup_plan_of_bins_that_report_is_planned_as_before(
    client: ApiClient, settings: Settings, seed: Seeder
) -> None:
    _city(seed)
    _fill(seed, "bin-glass", 88, 8, lat=51.34, lon=12.37, waste_type="glass")
    day = _next_day()
    plan = client.get("/api/v1/waste/pickups", headers=OP, params={"date": day.isoformat()}).json()
    got = [
        (
            s["site_id"],
            s["truck"],
            s["reason"],
            s["fill_pct"],
            s["expected_fill_pct"],
            datetime.fromisoformat(s["arrival"]),
            datetime.fromisoformat(s["predicted_full_at"]) if s["predicted_full_at"] else None,
        )
        for s in plan["data"]
    ]
    assert {g[0] for g in got} == {"bin-full", "bin-soon", "bin-glass"}
    assert got == _old_plan(client, settings, day, datetime.fromisoformat(plan["as_of"]))


def test_pickup_plan_counts_a_silent_bin_as_emptied_when_it_was_due(
    client: ApiClient, settings: Settings, seed: Seeder
) -> None:
    """A glass bin whose sensor died two days ago, predicted to reach the urgent level at noon of the next service
    day: planned that day, then not again until its prediction, filling from the emptying, reaches it again."""
    rate, dead = 10.0, hours_ago(48)
    tz = settings.timezone
    first = day_start(_next_day(), tz, settings.pickup_start_hour)
    due = first + timedelta(hours=12)
    last_level = URGENT_PCT - rate * (due - dead).total_seconds() / 86_400
    assert 0 < last_level < URGENT_PCT
    dev = seed.bin("bin-dead", lat=51.34, lon=12.37, waste_type="glass")
    seed.levels(dev, [(dead - timedelta(hours=h), last_level - rate * h / 24) for h in range(72, -1, -1)])
    status = client.get("/api/v1/waste/bins/bin-dead", headers=OP).json()
    assert status["flags"]["silent"]  # the bins endpoint reports the fitted level now, not the last reading's
    assert status["fill_pct"] == pytest.approx(last_level + rate * 2, abs=0.1)
    cycle = timedelta(days=URGENT_PCT / rate)  # from emptied to the urgent level again
    today = now().astimezone(ZoneInfo(tz)).date()
    days = [d for d in (today + timedelta(days=k) for k in range(1, 15)) if d.weekday() in settings.service_days]
    plans = {d: client.get("/api/v1/waste/pickups", headers=OP, params={"date": d.isoformat()}).json() for d in days}
    planned = {d for d, p in plans.items() if "bin-dead" in {s["site_id"] for s in p["data"]}}
    expected = set()
    for d, p in plans.items():
        nxt = date.fromisoformat(p["next_service_date"])
        if nxt not in plans:
            continue
        start, end = datetime.fromisoformat(p["start"]), datetime.fromisoformat(plans[nxt]["start"])
        if any(start < due + k * cycle <= end for k in range(3)):
            expected.add(d)
    checked = {d for d in plans if date.fromisoformat(plans[d]["next_service_date"]) in plans}
    assert _next_day() in expected and len(expected) == 2  # the day it is due, and once more 9.25 days later
    assert planned & checked == expected
    stop = next(s for s in plans[_next_day()]["data"] if s["site_id"] == "bin-dead")
    assert stop["fill_pct"] == pytest.approx(status["fill_pct"], abs=0.1)
