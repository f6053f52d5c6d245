"""The API over simulated weeks (small city: parking; medium city: its 300 bins), stored by the real ingest and
checked against the ground truth.

The week is fixed (from Monday 3 March 2025), so every run checks the same truth. Nobody empties a bin during the
week, so that some bins overflow and others stay nearly empty. Faults are the default mix; the comparison drops what
never reached the hub (``gaps``, ``garbage``) and uses the skewed time where the network server's clock was off.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from apitest import OP, make_settings

from stadtpuls.fleet import apply, parse_text
from stadtpuls.migrate import migrate
from stadtpuls.planning.pickups import day_start, next_service_day
from stadtpuls.settings import Settings

# Each module fixture simulates and ingests a week (about a minute on a loaded 2-core machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TZ = ZoneInfo("Europe/Berlin")
SERVICE_DAYS = (0, 1, 2, 3, 4)
DUMP_PCT = 5.0
WEEK_START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday: the same week, and the same truth, in every run


@dataclass
class Week:
    url: str
    start: datetime
    end: datetime
    lines: list[dict[str, Any]]
    intervals: dict[str, int]  # dev_eui -> report interval


def _when(line: dict[str, Any]) -> datetime:
    t = datetime.fromisoformat(line["t"].replace("Z", "+00:00"))
    if "skew" in line.get("faults", ()):
        t += timedelta(seconds=float(line["skew_s"]))
    return t


def _simulate(url: str, broker: str, spool: Any, size: str, models: tuple[str, ...]) -> Week:
    """The week from :data:`WEEK_START`, published to ``broker`` and stored by the real ingest."""
    from stadtpuls.ingest.service import IngestService
    from stadtpuls.simulators.city import build_city
    from stadtpuls.simulators.engine import SimConfig, Simulation
    from stadtpuls.simulators.export import registry_yaml
    from stadtpuls.simulators.faults import FaultConfig
    from stadtpuls.simulators.mqtt_raw import publish_all
    from stadtpuls.simulators.timebase import DAY_US, US
    from stadtpuls.simulators.truth import TruthWriter

    migrate(url)
    start_s = int(WEEK_START.timestamp())
    end_s = start_s + 7 * 86400
    city = build_city(size, 5, "mixed")

    def no_collection(day: date, now_us: int) -> list[str]:
        return []

    config = SimConfig(
        city=size,
        seed=5,
        start_us=start_s * US,
        duration_us=7 * DAY_US,
        fmt="mixed",
        faults=FaultConfig.parse("default"),
        schedule=no_collection,
        service_days=SERVICE_DAYS,
        models=models,
    )
    truth = TruthWriter(keep=True)
    messages = [(m.topic, m.payload) for m in Simulation(config, truth=truth, city=city).messages()]
    with psycopg.connect(url) as conn:
        report = apply(conn, parse_text(registry_yaml(city), "yaml"))
    assert not report.errors, report.errors
    settings = Settings(
        database_url=url,
        mqtt_url=broker,
        mqtt_client_id=f"api-week-{uuid.uuid4().hex[:8]}",
        batch_size=5000,
        flush_interval=0.05,
        metrics_port=0,
        spool_dir=spool,
    )
    service = IngestService(settings, database_url=url, mqtt_url=broker)
    service.start()
    try:
        assert service.source.connected.wait(10), "ingest did not connect"
        publish_all(broker, messages)
        deadline = time.monotonic() + 180
        while service.metrics.received._value.get() < len(messages):  # noqa: SLF001 - counter value
            assert time.monotonic() < deadline, "ingest did not receive every message"
            time.sleep(0.1)
    finally:
        service.stop()
    intervals = {d.dev_eui: d.report_interval_s for d in city.devices}
    return Week(
        url,
        datetime.fromtimestamp(start_s, UTC),
        datetime.fromtimestamp(end_s, UTC),
        [ln for ln in truth.lines if "summary" not in ln],
        intervals,
    )


@pytest.fixture(scope="module")
def parking_week(new_database: Any, project_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Week:
    """The small city, every model."""
    pytest.importorskip("stadtpuls.simulators.engine")
    return _simulate(
        new_database(),
        project_broker.url,
        tmp_path_factory.mktemp("spool"),
        "small",
        ("waste", "parking", "buses", "environment"),
    )


@pytest.fixture(scope="module")
def waste_week(new_database: Any, project_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Week:
    """The medium city's 300 bins (waste model only), never collected during the week."""
    pytest.importorskip("stadtpuls.simulators.engine")
    return _simulate(new_database(), project_broker.url, tmp_path_factory.mktemp("spool"), "medium", ("waste",))


def _expected_lots(week: Week, at: datetime) -> dict[str, tuple[int, int]]:
    """(free, occupied) per lot at ``at`` from the truth: each space's last delivered state, if heard recently."""
    last: dict[str, tuple[datetime, bool, str]] = {}
    for ln in week.lines:
        if ln["kind"] != "space" or {"gaps", "garbage"} & set(ln.get("faults", ())):
            continue
        t = _when(ln)
        if t <= at and (ln["dev_eui"] not in last or t >= last[ln["dev_eui"]][0]):
            last[ln["dev_eui"]] = (t, bool(ln["quantities"]["occupied"]), ln["lot_id"])
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for dev, (t, occupied, lot) in last.items():
        if (at - t).total_seconds() <= 2.5 * week.intervals[dev]:
            out[lot][1 if occupied else 0] += 1
    return {lot: (v[0], v[1]) for lot, v in out.items()}


def test_free_spaces_per_lot_equal_the_ground_truth_at_several_instants(parking_week: Week, make_client: Any) -> None:
    week = parking_week
    api = make_client(make_settings(week.url))
    checked = 0
    for k in range(1, 7):
        at = week.start + timedelta(days=k, hours=3 * k, seconds=1234.5)
        expected = _expected_lots(week, at)
        lots = api.get("/api/v1/parking/lots", params={"at": at.isoformat()}).json()["data"]
        assert len(lots) == 3
        for lot in lots:
            free, occupied = expected.get(lot["lot_id"], (0, 0))
            assert (lot["free"], lot["occupied"]) == (free, occupied), (at, lot)
            assert lot["unknown"] == lot["capacity"] - free - occupied
            checked += free + occupied
    assert checked > 100


def _true_levels(week: Week) -> dict[str, list[tuple[datetime, float]]]:
    levels: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for ln in week.lines:
        if ln["kind"] == "bin":
            levels[ln["site_id"]].append(
                (datetime.fromisoformat(ln["t"].replace("Z", "+00:00")), float(ln["true_level_pct"]))
            )
    return {k: sorted(v) for k, v in levels.items()}


def _haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def _without_dumps(start_level: float, window: list[float]) -> list[float]:
    """True levels less every sudden rise (over ``DUMP_PCT`` points from one hourly reading to the next: a bulky
    dump, which no plan made beforehand can foresee) since the plan was made."""
    out, dumped, prev = [], 0.0, start_level
    for level in window:
        if level - prev > DUMP_PCT:
            dumped += level - prev
        out.append(level - dumped)
        prev = level
    return out


def _check_plan(
    week: Week, api: Any, day: date, levels: dict[str, list[tuple[datetime, float]]]
) -> tuple[int, int, int]:
    nxt = next_service_day(day, SERVICE_DAYS)
    start, next_start = day_start(day, TZ, 7.0), day_start(nxt, TZ, 7.0)
    plan = api.get("/api/v1/waste/pickups", headers=OP, params={"date": day.isoformat()}).json()
    planned = [s["site_id"] for s in plan["data"]]
    assert datetime.fromisoformat(plan["as_of"]) == start
    overflow, nearly_empty = set(), set()
    for site, series in levels.items():
        window = [lvl for t, lvl in series if start <= t < next_start]
        before = [lvl for t, lvl in series if t < start]
        if window and before and max(_without_dumps(before[-1], window)) >= 100:
            overflow.add(site)
        if before and window and before[-1] < 15 and max(window) < 40:
            nearly_empty.add(site)
    assert overflow <= set(planned), (day, overflow - set(planned))
    assert not nearly_empty & set(planned), day
    # valid routes: every planned bin once, positions 1..n per truck, each truck starting at the depot
    assert len(planned) == len(set(planned))
    depot = (plan["depot"]["lat"], plan["depot"]["lon"])
    geo = api.get("/api/v1/waste/pickups", headers=OP, params={"date": day.isoformat(), "format": "geojson"}).json()
    for truck in plan["trucks"]:
        own = [s for s in plan["data"] if s["truck"] == truck["truck"]]
        assert [s["seq"] for s in own] == list(range(1, len(own) + 1)) and len(own) == truck["bins"]
        first = own[0]
        assert first["leg_km"] == pytest.approx(1.3 * _haversine_km(depot, (first["lat"], first["lon"])), rel=1e-3)
        route = next(f for f in geo["features"] if f["id"] == f"route:{truck['truck']}")["geometry"]["coordinates"]
        assert route[0] == route[-1] == [depot[1], depot[0]]
        assert len(route) == len(own) + truck["unloads"] + 2
    return len(overflow), len(nearly_empty), len(planned)


def test_pickup_plans_cover_every_overflowing_bin_and_no_nearly_empty_one(waste_week: Week, make_client: Any) -> None:
    """Each service day whose next round still lies in the week: every bin that overflows by its filling before
    the next round is planned (bulky dumps after the plan was made are taken out), no nearly empty bin is."""
    week = waste_week
    api = make_client(make_settings(week.url, api_max_range_days=3660))  # plans for days long past
    levels = _true_levels(week)
    day = next_service_day(week.start.astimezone(TZ).date(), SERVICE_DAYS)
    totals = [0, 0, 0]
    plans = 0
    while day_start(next_service_day(day, SERVICE_DAYS), TZ, 7.0) < week.end:
        for k, n in enumerate(_check_plan(week, api, day, levels)):
            totals[k] += n
        plans += 1
        day = next_service_day(day, SERVICE_DAYS)
    overflow, nearly_empty, planned = totals
    print(
        f"{plans} plans: {overflow} overflowing bins (all planned), {nearly_empty} nearly empty (none planned), "
        f"{planned} planned"
    )
    assert plans >= 2 and overflow >= 5 and nearly_empty >= 5


def _true(line: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(line["t"].replace("Z", "+00:00"))


def _lost(line: dict[str, Any]) -> bool:
    return bool({"gaps", "garbage"} & set(line.get("faults", ())))


def _net(lines: list[dict[str, Any]]) -> int:
    return int(sum(ln["quantities"]["pax_in"] - ln["quantities"]["pax_out"] for ln in lines))


def _feeds_at(api: Any, at: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The lot summaries, ParkAPI sites and ParkAPI spots at ``at``, built as the live feeds build them."""
    from stadtpuls.api.opendata import parkapi
    from stadtpuls.api.queries import opendata as opendata_q
    from stadtpuls.api.queries import parking as parking_q

    async def build() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        async with api.ctx.pool.connection() as conn:
            lots = await parking_q.lots(conn, at=at)
            facts = await opendata_q.lot_facts(conn)
            spaces = await parking_q.spaces(conn, at=at)
        sites = parkapi.site_items(lots, facts, now=at, tz="Europe/Berlin")
        return lots, sites, parkapi.spot_items(spaces, sites, now=at)

    return api.portal.call(build)


def test_parkapi_free_spaces_equal_the_lots_route_and_the_truth_at_several_instants(
    parking_week: Week, make_client: Any
) -> None:
    week = parking_week
    api = make_client(make_settings(week.url))
    checked = 0
    for k in range(1, 7):
        at = week.start + timedelta(days=k, hours=3 * k + 1, seconds=321.5)
        expected = _expected_lots(week, at)
        route = {
            lot["lot_id"]: lot for lot in api.get("/api/v1/parking/lots", params={"at": at.isoformat()}).json()["data"]
        }
        _, sites, spots = _feeds_at(api, at)
        assert {s["original_uid"] for s in sites} == set(route) and len(sites) == 3
        for s in sites:
            lot = route[s["original_uid"]]
            free, occupied = expected.get(s["original_uid"], (0, 0))
            assert s["realtime_free_capacity"] == lot["free"] == free, (at, s)
            assert s["capacity"] == lot["capacity"] and s["type"] in (
                "CAR_PARK",
                "OFF_STREET_PARKING_GROUND",
                "ON_STREET",
            )
            mine = [p["realtime_status"] for p in spots if p["parking_site_id"] == s["id"]]
            assert (mine.count("AVAILABLE"), mine.count("TAKEN")) == (free, occupied)
            assert mine.count("UNKNOWN") == lot["unknown"]
            checked += free
    assert checked > 50
    now_sites = {s["original_uid"]: s for s in api.get("/api/public/v3/parking-sites").json()["items"]}
    now_lots = {lot["lot_id"]: lot for lot in api.get("/api/v1/parking/lots").json()["data"]}
    assert {k: s["realtime_free_capacity"] for k, s in now_sites.items()} == {k: v["free"] for k, v in now_lots.items()}
    assert not any(s["has_realtime_data"] for s in now_sites.values())  # the week is long past


def test_gtfs_rt_occupancy_equals_the_ground_truth_at_several_instants(parking_week: Week, make_client: Any) -> None:
    from stadtpuls.api.opendata import gtfsrt
    from stadtpuls.api.queries import buses as buses_q
    from stadtpuls.api.queries import opendata as opendata_q

    week = parking_week
    api = make_client(make_settings(week.url))
    max_age = timedelta(seconds=900)
    door = [ln for ln in week.lines if ln["kind"] == "vehicle" and ln["codec"] == "milesight-iot/vs133"]
    heard = [ln for ln in week.lines if ln["kind"] == "vehicle" and not _lost(ln)]
    checked = exact = 0
    instants = [(day, hour + day / 7) for day in range(1, 7) for hour in (6.2, 8.1, 10.5, 13.3, 16.8, 19.4, 22.6)]
    for day, hour in instants:
        local = datetime.combine((week.start + timedelta(days=day)).astimezone(TZ).date(), datetime.min.time(), TZ)
        at = (local + timedelta(hours=hour)).astimezone(UTC)

        async def build(at: datetime = at) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
            async with api.ctx.pool.connection() as conn:
                vehicles = await buses_q.vehicles(conn, tz="Europe/Berlin", at=at)
                facts = await opendata_q.fleet_facts(conn)
            return gtfsrt.feed(vehicles, facts, now=at, max_age=max_age), vehicles, facts

        msg, vehicles, facts = api.portal.call(build)
        recent = {ln["site_id"] for ln in heard if at - max_age <= _when(ln) <= at}
        assert {e.id for e in msg.entity} == recent, at
        assert msg.header.timestamp == max((e.vehicle.timestamp for e in msg.entity), default=int(at.timestamp()))
        for e in msg.entity:
            mine = [ln for ln in door if ln["site_id"] == e.id]
            today = sorted((ln for ln in mine if local <= _true(ln) <= at), key=_true)
            truth = today[-1]["onboard"] if today else 0
            assert truth == _net(today)  # the bus leaves the depot empty each morning
            stored = sorted((ln for ln in mine if not _lost(ln) and local <= _when(ln) <= at), key=_when)
            partial = [_net(stored[: k + 1]) for k in range(len(stored))]
            # the truth less what never reached the hub (or reached it with a time on another day); a running
            # sum that lost boardings and went below zero is held at zero, as the hub documents
            expected = truth - _net(today) + _net(stored) - min(0, min(partial, default=0))
            exact += expected == truth
            fact = facts["vehicle"][e.id]
            design = fact["seated_capacity"] + fact["standing_capacity"]
            assert abs(e.vehicle.occupancy_percentage * design / 100 - expected) <= 1, (at, e.id, expected)
            assert e.vehicle.occupancy_status == gtfsrt.occupancy_status(
                expected, fact["seated_capacity"], fact["standing_capacity"]
            )
            assert next(v for v in vehicles if v["vehicle_id"] == e.id)["passengers"] == expected
            assert e.vehicle.trip.route_id == e.id.split("-")[1]
            checked += 1
    print(f"GTFS-RT occupancy: {checked} vehicle states checked, {exact} of them with every count delivered")
    assert checked >= 60 and exact >= 10
