from __future__ import annotations

from datetime import UTC, datetime

from stadtpuls.api.occupancy import bucket_edges

TZ = "Europe/Berlin"


def test_day_buckets_follow_local_midnight_across_dst() -> None:
    edges = bucket_edges(datetime(2025, 3, 29, 12, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), "day", TZ)
    lengths = [(b.timestamp() - a.timestamp()) / 3600 for a, b in zip(edges, edges[1:], strict=False)]
    assert lengths[:3] == [24.0, 23.0, 24.0]  # 30 March 2025 has 23 hours in Berlin
    assert all((e.hour, e.minute) == (0, 0) for e in edges)


def test_fifteen_minute_buckets_floor_to_the_quarter_hour() -> None:
    edges = bucket_edges(datetime(2025, 3, 3, 10, 7, tzinfo=UTC), datetime(2025, 3, 3, 11, tzinfo=UTC), "15min", TZ)
    assert edges[0].astimezone(UTC) == datetime(2025, 3, 3, 10, 0, tzinfo=UTC) and len(edges) == 5
