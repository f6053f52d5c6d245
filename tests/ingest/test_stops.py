"""Stops of passenger rows: nearest stop of a position, last stop for rows without one, reordered reports."""

from __future__ import annotations

import numpy as np
import psycopg

from stadtpuls.ingest.registry import Stops
from stadtpuls.ingest.stops import MAX_STOP_AGE, StopTracker, load_recent_stops

STOPS = Stops(by_line={"line-7": (["s07", "s08"], np.array([51.3400, 51.3500]), np.array([12.3700, 12.3700]))})
NAN = float("nan")


def _t(seconds: int) -> np.datetime64:
    return np.datetime64("2025-03-09T09:20:00", "us") + np.timedelta64(seconds, "s")


def _resolve(tracker: StopTracker, rows: list[tuple[int, float, float]]) -> list[str | None]:
    """rows: (seconds, lat, lon) of bus-1 on line-7; NaN position = a door counter row."""
    return tracker.resolve(
        ["bus-1"] * len(rows),
        ["line-7"] * len(rows),
        np.array([_t(s) for s, _, _ in rows]),
        np.array([r[1] for r in rows]),
        np.array([r[2] for r in rows]),
        STOPS,
    )


def test_a_door_row_takes_the_stop_of_the_position_report_before_it_in_time() -> None:
    tracker = StopTracker()
    # one batch, out of order: the s08 fix at 0 s, the s07 fix at 120 s, the door closing at 123 s
    assert _resolve(tracker, [(123, NAN, NAN), (120, 51.3400, 12.3700), (0, 51.3500, 12.3700)]) == ["s07", "s07", "s08"]


def test_a_reordered_report_in_a_later_batch_does_not_replace_the_newer_stop() -> None:
    tracker = StopTracker()
    assert _resolve(tracker, [(120, 51.3400, 12.3700)]) == ["s07"]
    # the s08 report from 0 s arrives late, in the same batch as the door row of 123 s
    assert _resolve(tracker, [(0, 51.3500, 12.3700), (123, NAN, NAN)]) == ["s08", "s07"]
    assert tracker.last["bus-1"] == ("s07", _t(120))


def test_a_door_row_long_after_the_last_stop_has_none() -> None:
    tracker = StopTracker()
    _resolve(tracker, [(0, 51.3400, 12.3700)])
    assert _resolve(tracker, [(11 * 60, NAN, NAN)]) == [None]


def test_stops_read_back_after_a_restart_are_each_vehicles_latest_within_the_stop_age(clean_db: str) -> None:
    age_min = int(MAX_STOP_AGE / np.timedelta64(60, "s"))
    rows = [  # (vehicle, stop, minutes ago)
        ("bus-1", "s07", age_min - 1),
        ("bus-1", "s08", 3),
        ("bus-1", None, 1),  # a row away from any stop does not count
        ("bus-2", "s07", age_min + 1),  # too old
    ]
    with psycopg.connect(clean_db, autocommit=True) as conn:
        for k, (vehicle, stop, minutes) in enumerate(rows):
            conn.execute(
                "INSERT INTO passenger_counts (time, dev_eui, site_id, stop_id, pax_count)"
                " VALUES (now() - make_interval(mins => %s), %s, %s, %s, 1)",
                (minutes, f"20000000000000{k:02x}", vehicle, stop),
            )
        found = load_recent_stops(conn, ["bus-1", "bus-2", "bus-3"])
    assert list(found) == ["bus-1"] and found["bus-1"][0] == "s08"
    assert np.datetime64("now", "us") - found["bus-1"][1] < np.timedelta64(4 * 60, "s")
