from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stadtpuls.api.occupancy import bucket_edges, occupancy

TZ = "Europe/Berlin"


def test_day_buckets_follow_local_midnight_across_dst() -> None:
    edges = bucket_edges(datetime(2025, 3, 29, 12, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "day", TZ)
    lengths = [(b.timestamp() - a.timestamp()) / 3600 for a, b in zip(edges, edges[1:], strict=False)]
    assert lengths[:3] == [24.0, 23.0, 24.0]  # 30 March 2025 has 23 hours in Berlin
    assert all((e.hour, e.minute) == (0, 0) for e in edges)


def test_fifteen_minute_buckets_floor_to_the_quarter_hour() -> None:
    edges = bucket_edges(datetime(2025, 3, 3, 10, 7, tzinfo=UTC), datetime(2025, 3, 3, 11, tzinfo=UTC), "15min", TZ)
    assert edges[0].astimezone(UTC) == datetime(2025, 3, 3, 10, 0, tzinfo=UTC) and len(edges) == 5


def test_a_silent_sensor_turns_unknown_and_a_space_takes_its_newest_sensor() -> None:
    t0 = datetime(2025, 3, 3, 8, tzinfo=UTC)
    sensors = [("d1", "s1", 3600), ("d2", "s2", 3600), ("d3", "s2", 3600)]
    events = [("d1", t0, True), ("d2", t0, True), ("d3", t0 + timedelta(minutes=30), False)]
    rows = occupancy(
        events,
        sensors,
        start=t0,
        end=t0 + timedelta(hours=4),
        now=t0 + timedelta(days=1),
        bucket="hour",
        tz=TZ,
        capacity=3,
    )
    assert [(r["occupied"], r["free"], r["unknown"]) for r in rows] == [(1, 1, 1), (1, 1, 1), (0, 1, 2), (0, 0, 3)]
    assert rows[2]["occupied_avg"] == 0.0 and rows[0]["free_min"] == 1


def test_no_buckets_after_now() -> None:
    t0 = datetime(2025, 3, 3, 8, tzinfo=UTC)
    rows = occupancy(
        [],
        [],
        start=t0,
        end=t0 + timedelta(days=2),
        now=t0 + timedelta(hours=2, minutes=10),
        bucket="hour",
        tz=TZ,
        capacity=0,
    )
    assert len(rows) == 3 and rows[-1]["end"].astimezone(UTC) == t0 + timedelta(hours=3)
