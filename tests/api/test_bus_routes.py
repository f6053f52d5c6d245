from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apitest import ApiClient, Seeder, now


def _line(seed: Seeder) -> dict[str, str]:
    seed.site("line-5", "line", name="Line 5")
    for k in range(3):
        seed.site(f"stop-{k}", "stop", parent_id="line-5", seq=k, name=f"Stop {k}")
    seed.site("bus-1", "vehicle", parent_id="line-5", capacity=80)
    seed.site("bus-2", "vehicle", parent_id="line-5", capacity=80)
    seed.site("bus-3", "vehicle", parent_id="line-5", capacity=80)
    return {
        "door1": seed.device("bus-1", codec="milesight-iot/vs133"),
        "pax1": seed.device("bus-1", codec="opensource/esp32-paxcounter"),
        "pax2": seed.device("bus-2", codec="opensource/esp32-paxcounter"),
    }


def test_vehicles_and_lines_occupancy_now(client: ApiClient, seed: Seeder) -> None:
    d = _line(seed)
    t = now()
    seed.passengers(d["door1"], t - timedelta(days=2), pax_in=50, pax_out=0, stop_id="stop-0")  # not today
    steps = [(10, 0, "stop-0"), (5, 3, "stop-1"), (0, 20, "stop-2"), (4, 0, "stop-0")]  # 10, 12, 0 (not -8), 4
    for k, (i, o, stop) in enumerate(steps):
        seed.passengers(d["door1"], t - timedelta(seconds=4 - k), pax_in=i, pax_out=o, stop_id=stop)
    seed.passengers(d["pax1"], t - timedelta(seconds=1), pax_count=40, stop_id="stop-0")  # door counter wins
    seed.passengers(d["pax2"], t - timedelta(seconds=2), pax_count=33, stop_id="stop-1")
    r = client.get("/api/v1/buses/vehicles")
    assert r.status_code == 200
    v = {x["vehicle_id"]: x for x in r.json()["data"]}
    assert (v["bus-1"]["passengers"], v["bus-1"]["source"], v["bus-1"]["occupancy_pct"]) == (4, "door_counter", 5.0)
    assert v["bus-1"]["stop_id"] == "stop-0" and v["bus-1"]["stop_name"] == "Stop 0"
    assert (v["bus-2"]["passengers"], v["bus-2"]["source"]) == (33, "paxcounter")
    assert v["bus-2"]["in_service"] is True and v["bus-3"]["in_service"] is False
    assert v["bus-3"]["passengers"] is None and v["bus-3"]["line_id"] == "line-5"
    lines = client.get("/api/v1/buses/lines").json()
    assert lines["count"] == 1
    line = lines["data"][0]
    assert (line["line_id"], line["vehicles"], line["passengers"], line["capacity"]) == ("line-5", 2, 37, 160)
    assert line["occupancy_pct"] == pytest.approx(23.1)


def test_line_hourly_usage_per_stop(client: ApiClient, seed: Seeder) -> None:
    d = _line(seed)
    hour = now().replace(minute=0, second=0) - timedelta(hours=3)
    seed.passengers(d["door1"], hour + timedelta(minutes=5), pax_in=7, pax_out=0, stop_id="stop-0")
    seed.passengers(d["door1"], hour + timedelta(minutes=15), pax_in=2, pax_out=4, stop_id="stop-1")
    seed.passengers(d["door1"], hour + timedelta(minutes=50), pax_in=3, pax_out=0, stop_id="stop-0")
    seed.passengers(d["door1"], hour + timedelta(minutes=65), pax_in=1, pax_out=6, stop_id="stop-2")
    seed.passengers(d["pax2"], hour + timedelta(minutes=10), pax_count=12, stop_id="stop-0")
    r = client.get(
        "/api/v1/buses/lines/line-5/hourly",
        params={"start": (hour - timedelta(hours=1)).isoformat(), "end": (hour + timedelta(hours=3)).isoformat()},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    rows = [
        (datetime.fromisoformat(x["hour"]), x["stop_id"], x["boardings"], x["alightings"], x["pax_count_max"])
        for x in body["data"]
    ]
    assert rows == [
        (hour, "stop-0", 10, 0, 12),
        (hour, "stop-1", 2, 4, None),
        (hour + timedelta(hours=1), "stop-2", 1, 6, None),
    ]
    assert datetime.fromisoformat(body["data"][0]["hour"]).tzinfo is not None
    assert (
        datetime.fromisoformat(body["data"][0]["hour"]).utcoffset()
        == hour.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    )
    assert body["data"][0]["stop_name"] == "Stop 0" and body["data"][0]["seq"] == 0


def test_line_hourly_bad_input(client: ApiClient, seed: Seeder) -> None:
    _line(seed)
    assert client.get("/api/v1/buses/lines/line-9/hourly").status_code == 404
    t = now()
    url = "/api/v1/buses/lines/line-5/hourly"
    assert (
        client.get(url, params={"start": t.isoformat(), "end": (t - timedelta(hours=2)).isoformat()}).status_code == 422
    )
    assert (
        client.get(url, params={"start": (t - timedelta(days=500)).isoformat(), "end": t.isoformat()}).status_code
        == 422
    )
    week = client.get(url, params={"start": (t - timedelta(days=500)).isoformat()}).json()  # start alone: 7 days
    assert datetime.fromisoformat(week["end"]) - datetime.fromisoformat(week["start"]) == timedelta(days=7)
    assert client.get(url, params={"end": "soon"}).status_code == 422
    assert client.get(url).status_code == 200


def test_line_load_is_time_weighted_passengers_on_board(client: ApiClient, seed: Seeder) -> None:
    d = _line(seed)
    hour = (now() - timedelta(hours=5)).replace(minute=0, second=0, microsecond=0)
    seed.passengers(d["pax2"], hour + timedelta(minutes=10), pax_count=12, stop_id="stop-0")
    seed.passengers(d["pax2"], hour + timedelta(minutes=40), pax_count=20, stop_id="stop-1")
    seed.passengers(d["door1"], hour + timedelta(minutes=20), pax_in=5, pax_out=2, stop_id="stop-1")
    r = client.get(
        "/api/v1/buses/lines/line-5/load",
        params={"start": hour.isoformat(), "end": (hour + timedelta(hours=2)).isoformat(), "bucket": "hour"},
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["data"]
    # 12 people for 30 minutes, then 20 for 20 minutes, over the hour; the count holds into the next hour
    assert first["on_board_avg"] == round((12 * 1800 + 20 * 1200) / 3600, 2)
    assert (first["on_board"], first["vehicles"], first["boardings"], first["alightings"]) == (20, 1, 5, 2)
    assert (second["on_board_avg"], second["on_board"]) == (20.0, 20)
    assert client.get("/api/v1/buses/lines/nope/load").status_code == 404
