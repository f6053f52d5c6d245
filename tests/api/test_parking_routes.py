from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apitest import ApiClient, Seeder, hours_ago, now

from stadtpuls.api.timerange import HISTORY_MAX_BUCKETS
from stadtpuls.settings import Settings


def _seed_two_lots(seed: Seeder) -> dict[str, list[str]]:
    a = seed.lot("lot-a", 4, capacity=5, lat=51.34, lon=12.37)
    b = seed.lot("lot-b", 2, lat=51.30, lon=12.40)
    t = hours_ago(1)
    seed.park(a[0], t, True)
    seed.park(a[1], t, False)
    seed.park(a[2], t, True)
    seed.park(a[3], hours_ago(3), False)  # heartbeat 1 h: silent past 2.5 h -> unknown
    seed.park(b[0], hours_ago(0.5), False)
    seed.park(b[1], hours_ago(0.4), False)
    return {"lot-a": a, "lot-b": b}


def test_lots_count_free_occupied_and_silent_spaces_as_unknown(client: ApiClient, seed: Seeder) -> None:
    _seed_two_lots(seed)
    r = client.get("/api/v1/parking/lots")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2
    lots = {lot["lot_id"]: lot for lot in body["data"]}
    a = lots["lot-a"]
    assert (a["capacity"], a["free"], a["occupied"], a["unknown"]) == (5, 1, 2, 2)
    assert a["stale"] is False
    assert (a["lat"], a["lon"]) == (51.34, 12.37)
    b = lots["lot-b"]
    assert (b["capacity"], b["free"], b["occupied"], b["unknown"]) == (2, 2, 0, 0)
    assert datetime.fromisoformat(b["updated_at"]) == hours_ago(0.4)


def test_lot_state_at_an_earlier_instant(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-a", 2)
    seed.park(devs[0], hours_ago(2), False)
    seed.park(devs[0], hours_ago(1), True)
    seed.park(devs[1], hours_ago(2), True)
    at = (now() - timedelta(minutes=90)).isoformat()
    r = client.get("/api/v1/parking/lots/lot-a", params={"at": at})
    assert r.status_code == 200
    assert (r.json()["free"], r.json()["occupied"]) == (1, 1)
    now_lot = client.get("/api/v1/parking/lots/lot-a").json()
    assert (now_lot["free"], now_lot["occupied"]) == (0, 2)


def test_lot_without_recent_events_is_stale(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-old", 3)
    for d in devs:
        seed.park(d, hours_ago(10), False)
    lot = client.get("/api/v1/parking/lots/lot-old").json()
    assert lot["stale"] is True and lot["unknown"] == 3 and lot["free"] == 0


def test_unknown_lot_is_a_404_problem(client: ApiClient, seed: Seeder) -> None:
    r = client.get("/api/v1/parking/lots/nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 404 and "nope" in r.json()["detail"]
    assert client.get("/api/v1/parking/lots/nope/history").status_code == 404


def test_lots_geojson_has_a_point_per_located_lot(client: ApiClient, seed: Seeder) -> None:
    _seed_two_lots(seed)
    seed.site("lot-nowhere", "lot", capacity=10)
    r = client.get("/api/v1/parking/lots.geojson")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    ids = {f["id"]: f for f in fc["features"]}
    assert set(ids) == {"lot-a", "lot-b"}
    assert ids["lot-a"]["geometry"]["coordinates"] == [12.37, 51.34]
    assert ids["lot-a"]["properties"]["free"] == 1


def test_history_carries_state_forward_between_events(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-h", 2, interval=3600)
    base = (now() - timedelta(hours=6)).replace(minute=0, second=0)
    seed.park(devs[0], base + timedelta(minutes=5), True)  # occupied from then on, heartbeats every hour
    for h in range(1, 6):
        seed.park(devs[0], base + timedelta(hours=h, minutes=5), True)
        seed.park(devs[1], base + timedelta(hours=h, minutes=5), h >= 3)
    r = client.get(
        "/api/v1/parking/lots/lot-h/history",
        params={"start": base.isoformat(), "end": (base + timedelta(hours=5)).isoformat(), "bucket": "15min"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucket"] == "15min" and body["count"] == 20 and body["capacity"] == 2
    first, last = body["data"][0], body["data"][-1]
    assert (first["occupied"], first["free"], first["unknown"]) == (1, 0, 1)  # second sensor not heard yet
    assert (last["occupied"], last["free"]) == (2, 0)
    assert datetime.fromisoformat(first["start"]).utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    hourly = client.get(
        "/api/v1/parking/lots/lot-h/history",
        params={"start": base.isoformat(), "end": (base + timedelta(hours=5)).isoformat(), "bucket": "hour"},
    ).json()
    assert hourly["count"] == 5
    assert [b["occupied"] for b in hourly["data"]] == [1, 1, 1, 2, 2]
    assert [b["free"] for b in hourly["data"]] == [0, 1, 1, 0, 0]


def test_history_day_buckets_are_local_days(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-d", 1)
    seed.park(devs[0], hours_ago(30), True)
    r = client.get("/api/v1/parking/lots/lot-d/history", params={"bucket": "day"})
    assert r.status_code == 200
    days = r.json()["data"]
    assert len(days) >= 30
    for d in days:
        start = datetime.fromisoformat(d["start"])
        assert (start.hour, start.minute) == (0, 0)


def test_history_rejects_bad_ranges_and_buckets(client: ApiClient, seed: Seeder) -> None:
    seed.lot("lot-a", 1)
    url = "/api/v1/parking/lots/lot-a/history"
    t = datetime(2025, 3, 3, tzinfo=UTC)
    cases = [
        {"start": t.isoformat(), "end": (t - timedelta(hours=1)).isoformat()},  # inverted
        {"start": t.isoformat(), "end": (t + timedelta(days=400)).isoformat()},  # too long
        {"bucket": "week"},
        {"start": "yesterday"},
        {"start": "0001-01-01T00:00:00Z", "end": "0001-01-02T00:00:00Z"},
    ]
    for params in cases:
        r = client.get(url, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert client.get("/api/v1/parking/lots", params={"at": "not-a-time"}).status_code == 422


def test_lot_history_answers_a_year_of_quarters_and_is_limited_in_buckets(
    client: ApiClient, seed: Seeder, settings: Settings, make_client: Callable[..., ApiClient]
) -> None:
    seed.lot("lot-a", 1)
    t = datetime(2025, 1, 1, tzinfo=UTC)
    url = "/api/v1/parking/lots/lot-a/history"
    year = {"start": t.isoformat(), "end": datetime(2026, 1, 1, tzinfo=UTC).isoformat(), "bucket": "15min"}
    r = client.get(url, params=year)
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 365 * 96
    # a range the settings allow (4 x 200 days) but with more buckets than HISTORY_MAX_BUCKETS
    wide = make_client(settings.model_copy(update={"api_max_range_days": 200}))
    long = {"start": t.isoformat(), "end": (t + timedelta(days=HISTORY_MAX_BUCKETS // 96 + 1)).isoformat()}
    r = wide.get(url, params={**long, "bucket": "15min"})
    assert r.status_code == 422 and "bucket" in r.json()["detail"]
    assert wide.get(url, params={**long, "bucket": "hour"}).status_code == 200


def test_history_serves_queued_late_readings_before_the_rollup_job_runs(client: ApiClient, seed: Seeder) -> None:
    devs = seed.lot("lot-q", 1, interval=3600)
    base = (now() - timedelta(hours=8)).replace(minute=0, second=0, microsecond=0)
    for h in range(6):
        seed.park(devs[0], base + timedelta(hours=h), False)
    params = {"start": base.isoformat(), "end": (base + timedelta(hours=6)).isoformat(), "bucket": "hour"}
    before = client.get("/api/v1/parking/lots/lot-q/history", params=params).json()["data"]
    assert [b["free_avg"] for b in before] == [1.0] * 6
    late = base + timedelta(hours=2, minutes=30)  # a late reading as the writer stores it: row and queued span
    seed.conn.execute(
        "INSERT INTO parking_events (time, dev_eui, site_id, lot_id, occupied)"
        " SELECT %s, dev_eui, site_id, 'lot-q', true FROM devices WHERE dev_eui = %s",
        (late, devs[0]),
    )
    seed.conn.execute(
        "INSERT INTO rollup_dirty (kind, key, first, last) VALUES ('parking_lot', 'lot-q', %s, %s)", (late, late)
    )
    queued = client.get("/api/v1/parking/lots/lot-q/history", params=params).json()["data"]
    assert [b["occupied_avg"] for b in queued] == [0.0, 0.0, 0.5, 0.0, 0.0, 0.0]
    seed.conn.execute("SELECT rollups_refresh_pending()")
    assert seed.conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
    assert client.get("/api/v1/parking/lots/lot-q/history", params=params).json()["data"] == queued
