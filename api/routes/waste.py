"""Waste (operator): bins with fill, rate, predicted full time and flags; a bin's history; the pickup plan.

Every route sees the bins of the caller's town only (another town's bin is answered 404 like an unknown one), and
plans and reports with the town's time zone, depot, service days and round start hour
(:func:`stadtpuls.tenants.town_settings`; the hub's settings where the town has none, and for a hub admin key without
a town prefix).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import orjson
import yaml
from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from psycopg import AsyncConnection

from stadtpuls.planning import BinState, day_start, next_service_day
from stadtpuls.planning.horizon import Choice, plan_day
from stadtpuls.planning.rounds import Distances, Visit, great_circle
from stadtpuls.planning.trucks import Fleet, FleetConfigError, default_fleet, fleet_from_mapping
from stadtpuls.settings import Settings
from stadtpuls.tenants import town_settings

from ..deps import Access, AppContext, ConnDep, CtxDep, OperatorScope
from ..export import plan_csv, plan_geojson
from ..models.waste import BinHistoryPublic, BinPublic, BinsPublic, PickupPlanPublic
from ..occupancy import history_json
from ..osrm import RoutingServiceError, lookup, table_km
from ..problems import Problem, responses
from ..queries import waste as q
from ..timerange import check_day, check_instant, history_range, resolve_range
from ..waste import FIT_WINDOW_DAYS, Limits, bin_state, bin_status

__all__ = ["router", "statuses"]

router = APIRouter(prefix="/api/v1/waste", tags=["waste"], responses=responses(401, 403, 422))
SiteId = Annotated[str, Path(min_length=1, max_length=64, description="the bin's site_id")]
Flag = Literal["battery_low", "silent", "over_threshold"]
PLAN_FUTURE_DAYS = 14


async def statuses(
    conn: AsyncConnection,
    settings: Settings,
    *,
    at: datetime,
    site_id: str | None = None,
    waste_type: str | None = None,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Every bin's (of ``tenant``; None: of every town) status as of ``at`` from readings of the last 21 days."""
    meta = await q.bins(conn, site_id=site_id, waste_type=waste_type, tenant=tenant)
    ids = [m["site_id"] for m in meta]
    since = at - timedelta(days=FIT_WINDOW_DAYS)
    series = await q.fill_series(conn, site_ids=ids, since=since, until=at)
    last = await q.last_readings(conn, site_ids=ids, since=since, until=at)
    limits = Limits(settings.battery_low_pct, settings.battery_low_v)

    def compute() -> list[dict[str, Any]]:
        return [bin_status(m, series.get(m["site_id"]), last.get(m["site_id"]), at=at, limits=limits) for m in meta]

    return await asyncio.to_thread(compute)


async def town(ctx: AppContext, conn: AsyncConnection, access: Access) -> Settings:
    """The settings the caller's town plans and reports with (the hub's for a hub admin without a prefix)."""
    if access.tenant is None:
        return ctx.settings
    return town_settings(ctx.settings, (await ctx.tenants.all(conn)).get(access.tenant))


@router.get("/bins", response_model=BinsPublic, summary="bins with fill, fill rate, predicted full time and flags")
async def list_bins(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    waste_type: Annotated[str | None, Query(max_length=50)] = None,
    flag: Annotated[Flag | None, Query(description="only bins with this flag set")] = None,
    at: Annotated[datetime | None, Query(description="status at this instant instead of now")] = None,
) -> BinsPublic:
    s = await town(ctx, conn, access)
    when = check_instant(at, "at", s.timezone) or datetime.now(UTC)
    rows = await statuses(conn, s, at=when, waste_type=waste_type, tenant=access.tenant)
    if flag is not None:
        rows = [r for r in rows if r["flags"][flag]]
    return BinsPublic.model_validate({"data": rows, "count": len(rows)})


@router.get("/bins/{site_id}", response_model=BinPublic, responses=responses(404), summary="one bin")
async def get_bin(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    site_id: SiteId,
    at: Annotated[datetime | None, Query(description="status at this instant instead of now")] = None,
) -> BinPublic:
    s = await town(ctx, conn, access)
    when = check_instant(at, "at", s.timezone) or datetime.now(UTC)
    rows = await statuses(conn, s, at=when, site_id=site_id, tenant=access.tenant)
    if not rows:
        raise Problem(404, f"no bin {site_id!r}")
    return BinPublic.model_validate(rows[0])


@router.get(
    "/bins/{site_id}/history",
    response_model=BinHistoryPublic,
    responses=responses(404),
    summary="a bin's readings, or hourly / daily buckets (the town's time zone) from the rollups",
)
async def bin_history(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    site_id: SiteId,
    start: Annotated[datetime | None, Query(description="default: end minus 7 days")] = None,
    end: Annotated[datetime | None, Query(description="default: now")] = None,
    bucket: Annotated[Literal["raw", "hour", "day"], Query()] = "hour",
) -> Response:
    s = await town(ctx, conn, access)
    now = datetime.now(UTC)
    if bucket == "raw":
        start_, end_ = resolve_range(
            start,
            end,
            tz=s.timezone,
            now=now,
            default_span=timedelta(days=7),
            max_span=timedelta(days=s.api_max_range_days),
        )
    else:
        start_, end_ = history_range(
            start,
            end,
            bucket=bucket,
            tz=s.timezone,
            now=now,
            max_range_days=s.api_max_range_days,
            default_span=timedelta(days=7),
        )
    if not await q.bin_exists(conn, site_id=site_id, tenant=access.tenant):
        raise Problem(404, f"no bin {site_id!r}")
    if bucket == "raw":
        rows = await q.history_raw(conn, site_id=site_id, start=start_, end=end_)
        items, count = orjson.dumps(rows, option=orjson.OPT_UTC_Z)[1:-1], len(rows)  # without the brackets
    else:
        items, count = await q.history_json(
            conn, site_id=site_id, start=start_, end=end_, bucket=bucket, tz=s.timezone, now=now
        )
    return history_json({"site_id": site_id, "bucket": bucket}, items, count)


def load_fleet(settings: Settings) -> Fleet:
    """The fleet of ``STADTPULS_FLEET_FILE``, or one truck per fraction unloading at the depot."""
    depot = (settings.depot_lat, settings.depot_lon)
    if settings.fleet_file is None:
        return default_fleet(
            depot,
            shift_start_hour=settings.pickup_start_hour,
            speed_kmh=settings.truck_speed_kmh,
            service_s=settings.bin_service_s,
        )
    return fleet_from_mapping(yaml.safe_load(settings.fleet_file.read_text(encoding="utf-8")), depot=depot)


def _stop(visit: Visit, truck: str, seq: int, choice: Choice, tz: ZoneInfo) -> dict[str, Any]:
    b = choice.bin
    return {
        "seq": seq,
        "truck": truck,
        "site_id": b.site_id,
        "name": b.extra["name"],
        "waste_type": b.extra["waste_type"],
        "lat": b.lat,
        "lon": b.lon,
        "fill_pct": b.extra["fill_pct"],  # as the bins endpoints report it (a silent bin's state is older)
        "expected_fill_pct": round(b.level_at(visit.arrival), 1),
        "threshold_pct": b.threshold_pct,
        "rate_per_day": b.rate_per_day,
        "predicted_full_at": choice.crossing_at,
        "arrival": visit.arrival.astimezone(tz),
        "departure": visit.departure.astimezone(tz),
        "leg_km": round(visit.leg_km, 3),
        "load_l": round(visit.load_l),
        "reason": choice.why,
        "note": choice.note,
    }


async def _distances(settings: Settings, fleet: Fleet, states: list[BinState]) -> Distances | None:
    if settings.osrm_url is None:
        return None
    points = [fleet.depot, *((s.lat, s.lon) for f in fleet.fractions.values() for s in f.disposal_sites)]
    points += [(b.lat, b.lon) for b in states]
    points = list(dict.fromkeys(points))
    try:
        km = await table_km(str(settings.osrm_url), points, road_factor=settings.road_factor)
    except RoutingServiceError as exc:
        raise Problem(502, f"routing service: {exc}") from exc
    return lookup(points, km, road_factor=settings.road_factor)


async def build_plan(
    conn: AsyncConnection,
    settings: Settings,
    day: date | None,
    now: datetime,
    *,
    pins: Collection[str] = (),
    skips: Collection[str] = (),
    tenant: str | None = None,
) -> dict[str, Any]:
    """The pickup plan of ``tenant``'s bins (None: every bin) for ``day`` (default: the next service day) as
    :class:`PickupPlanPublic` fields; ``settings`` are the town's (:func:`town`)."""
    tz = settings.timezone
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    day = (
        check_day(day, "date", today=today, past_days=settings.api_max_range_days, future_days=PLAN_FUTURE_DAYS)
        if day
        else next_service_day(today, settings.service_days)
    )
    try:
        fleet = await asyncio.to_thread(load_fleet, settings)
    except (OSError, yaml.YAMLError, FleetConfigError) as exc:
        raise Problem(500, f"fleet configuration: {exc}") from exc
    nxt = next_service_day(day, settings.service_days)
    start = day_start(day, tz, fleet.shift_start_hour)
    as_of = min(now, start)
    rows = await statuses(conn, settings, at=as_of, tenant=tenant)
    states = [b for b in (bin_state(r, as_of) for r in rows) if b is not None]
    unknown = set(pins) - {b.site_id for b in states}
    if unknown:
        raise Problem(422, f"cannot pin {sorted(unknown)}: no such bin, or no position or reading yet")
    km = await _distances(settings, fleet, states)
    result = await asyncio.to_thread(
        plan_day,
        states,
        fleet,
        day=day,
        service_days=settings.service_days,
        tz=tz,
        pins=frozenset(pins),
        skips=frozenset(skips),
        km=km or great_circle(settings.road_factor),
        solver=settings.route_solver,
        now=as_of,
    )
    stops: list[dict[str, Any]] = []
    trucks: list[dict[str, Any]] = []
    for r in result.fleet.routes:
        bins = r.bins
        stops += [_stop(v, r.truck, k, result.choices[v.name], zone) for k, v in enumerate(bins, start=1)]
        trucks.append(
            {
                "truck": r.truck,
                "fraction": r.fraction,
                "start": r.visits[0].departure.astimezone(zone),
                "end": r.visits[-1].arrival.astimezone(zone),
                "distance_km": round(r.km, 3),
                "bins": len(bins),
                "unloads": sum(1 for v in r.visits if v.kind == "disposal"),
                "visits": [
                    {
                        "kind": v.kind,
                        "name": v.name,
                        "lat": v.lat,
                        "lon": v.lon,
                        "arrival": v.arrival.astimezone(zone),
                        "departure": v.departure.astimezone(zone),
                    }  # fmt: skip
                    for v in r.visits
                ],
            }
        )
    sites = {(s.name, s.lat, s.lon) for f in fleet.fractions.values() for s in fleet.disposal_sites(f)}
    return {
        "date": day,
        "next_service_date": nxt,
        "start": start,
        "as_of": as_of,
        "depot": {"lat": fleet.depot[0], "lon": fleet.depot[1]},
        "disposal_sites": [{"name": n, "lat": la, "lon": lo} for n, la, lo in sorted(sites)],
        "distance_km": round(result.fleet.km, 3),
        "crew_hours": round(result.fleet.crew_hours, 2),
        "solver": result.fleet.solver,
        "distances": "routing service" if km is not None else "great-circle x road factor",
        "bins_considered": len(states),
        "trucks": trucks,
        "skipped": sorted(result.skipped),
        "unplanned": [
            {"site_id": j.site_id, "reason": result.choices[j.site_id].why, "note": result.choices[j.site_id].note}
            for j in result.fleet.unplanned
        ],
        "data": stops,
        "count": len(stops),
    }


@router.get(
    "/pickups",
    response_model=PickupPlanPublic,
    responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}},
    summary="the pickup plan for a service day in route order from the depot (JSON, CSV or GeoJSON)",
    description="The caller's town's bins, planned with the town's depot (its first), service days, round start "
    "hour and time zone; where the town has none of these, the hub's settings.",
)
async def pickups(
    ctx: CtxDep,
    conn: ConnDep,
    access: OperatorScope,
    date_: Annotated[date | None, Query(alias="date", description="service day (default: the next one)")] = None,
    format_: Annotated[Literal["json", "csv", "geojson"], Query(alias="format")] = "json",
    pin: Annotated[list[str], Query(max_length=500, description="site_ids to empty whatever their fill")] = [],  # noqa: B006
    skip: Annotated[list[str], Query(max_length=500, description="site_ids to leave out today")] = [],  # noqa: B006
) -> Response:
    if set(pin) & set(skip):
        raise Problem(422, f"pinned and skipped at once: {sorted(set(pin) & set(skip))}")
    settings = await town(ctx, conn, access)
    result = await build_plan(conn, settings, date_, datetime.now(UTC), pins=pin, skips=skip, tenant=access.tenant)
    if format_ == "csv":
        filename = f"pickups-{result['date'].isoformat()}.csv"
        return Response(
            plan_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    if format_ == "geojson":
        return Response(orjson.dumps(plan_geojson(result)), media_type="application/geo+json")
    return Response(PickupPlanPublic.model_validate(result).model_dump_json(), media_type="application/json")
