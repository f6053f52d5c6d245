"""Frame-counter gap detection: gaps, counter resets, joins, session changes, late and repeated frames."""

from __future__ import annotations

import numpy as np

from stadtpuls.ingest.gaps import PriorState, find_gaps, late_holes

A, B = b"aaaaaaaaaaaaaaaa", b"bbbbbbbbbbbbbbbb"
T0 = np.datetime64("2026-01-05T06:00:00", "us")


def _t(*seconds: int) -> np.ndarray:
    return T0 + np.array(seconds) * np.timedelta64(1, "s")


def _prior(*rows: tuple[bytes, int, int, str | None]) -> PriorState:
    return PriorState(
        dev_eui=np.array([r[0] for r in rows], dtype="S16"),
        last_f_cnt=np.array([r[1] for r in rows], dtype=np.int64),
        last_time=np.array([T0 + np.timedelta64(r[2], "s") for r in rows], dtype="datetime64[us]"),
        session=[r[3] for r in rows],
    )


def _gaps(result: object) -> list[tuple[bytes, int, int]]:
    return [
        (bytes(d), int(a), int(b))
        for d, a, b in zip(
            result.gap_dev,
            result.gap_from,
            result.gap_to,  # type: ignore[attr-defined]
            strict=True,
        )
    ]


def test_missing_counters_within_a_batch_and_against_the_stored_state_are_gaps() -> None:
    devs = np.array([A, A, A, B, B], dtype="S16")
    f_cnt = np.array([5, 6, 9, 20, 21])
    r = find_gaps(devs, f_cnt, _t(10, 11, 12, 10, 11), [None] * 5, _prior((A, 2, 0, None), (B, 19, 0, None)), [])
    assert _gaps(r) == [(A, 3, 4), (A, 7, 8)]
    state = dict(zip([bytes(d) for d in r.state_dev], r.state_f_cnt.tolist(), strict=True))
    assert state == {A: 9, B: 21}


def test_rows_out_of_order_inside_a_batch_are_sorted_by_time_first() -> None:
    devs = np.array([A, A, A], dtype="S16")
    r = find_gaps(devs, np.array([3, 1, 2]), _t(3, 1, 2), [None] * 3, _prior(), [])
    assert _gaps(r) == []
    assert r.state_f_cnt.tolist() == [3]


def test_a_device_without_known_state_starts_without_a_gap() -> None:
    r = find_gaps(np.array([A], dtype="S16"), np.array([1000]), _t(5), [None], _prior(), [])
    assert _gaps(r) == [] and r.state_f_cnt.tolist() == [1000]


def test_lower_counter_at_a_later_time_is_a_reset_not_a_gap() -> None:
    devs = np.array([A, A, A], dtype="S16")
    r = find_gaps(devs, np.array([0, 1, 3]), _t(10, 11, 12), [None] * 3, _prior((A, 500, 0, None)), [])
    assert _gaps(r) == [(A, 2, 2)]
    assert r.state_f_cnt.tolist() == [3]


def test_join_between_uplinks_restarts_the_count() -> None:
    devs = np.array([A, A], dtype="S16")
    r = find_gaps(devs, np.array([10, 4]), _t(10, 20), [None, None], _prior((A, 9, 0, None)), [(A, _t(15)[0])])
    assert _gaps(r) == []
    assert r.state_f_cnt.tolist() == [4]
    assert r.state_join[0] == _t(15)[0]


def test_join_after_the_last_uplink_leaves_the_counter_unknown() -> None:
    r = find_gaps(np.array([A], dtype="S16"), np.array([10]), _t(10), [None], _prior((A, 9, 0, None)), [(A, _t(30)[0])])
    assert r.state_f_cnt.tolist() == [-1]
    assert r.state_time[0] == _t(30)[0]


def test_changed_session_is_not_a_gap() -> None:
    devs = np.array([A, A], dtype="S16")
    r = find_gaps(devs, np.array([50, 52]), _t(10, 11), ["s2", "s2"], _prior((A, 3, 0, "s1")), [])
    assert _gaps(r) == [(A, 51, 51)]


def test_late_and_repeated_frames_do_not_move_the_state() -> None:
    devs = np.array([A, A, A], dtype="S16")
    r = find_gaps(devs, np.array([7, 10, 12]), _t(-5, 0, 10), [None] * 3, _prior((A, 10, 0, None)), [])
    assert r.late.tolist() == [0, 1]  # before or at the stored time: late, they fill recorded gaps instead
    assert _gaps(r) == [(A, 11, 11)]
    assert r.state_f_cnt.tolist() == [12]


def test_a_join_older_than_the_last_uplink_seen_hides_no_gap() -> None:
    """A join message delivered again (or late) after the device's next uplinks starts no new count: the hole
    behind the batch's first uplink is still a gap."""
    r = find_gaps(
        np.array([A, A], dtype="S16"),
        np.array([32, 33]),
        _t(40, 50),
        [None, None],
        _prior((A, 30, 20, None)),
        [(A, _t(5)[0])],
    )
    assert _gaps(r) == [(A, 31, 31)]
    assert r.state_f_cnt.tolist() == [33]


def test_a_join_after_the_last_uplink_seen_starts_the_count_at_the_batch_s_first_uplink() -> None:
    r = find_gaps(
        np.array([A, A], dtype="S16"),
        np.array([0, 2]),
        _t(40, 50),
        [None, None],
        _prior((A, 30, 20, None)),
        [(A, _t(30)[0])],
    )
    assert _gaps(r) == [(A, 1, 1)]


def test_holes_beside_late_uplinks_are_what_no_recorded_gap_or_stored_counter_covers() -> None:
    stored = {"a": [(1, 10), (2, 20), (6, 30), (9, 40), (12, 50)], "b": [(5, 10), (9, 20)]}
    holes = late_holes(stored, {"a": {6}, "b": set()}, {}, {"a": [(4, 4)]})
    # 3 and 5 beside late 6 (4 already recorded); 7..8 beside it too; 10..11 lies between two uplinks not late
    assert holes == [("a", 3, 3, 30), ("a", 5, 5, 30), ("a", 7, 8, 40)]


def test_no_hole_across_a_join_or_a_lower_counter() -> None:
    stored = {"a": [(70, 10), (0, 20), (3, 30), (2, 35)]}
    # 70 -> 0: a lower counter; 0 -> 3 with 2 stored (out of time order): 1 is missing
    assert late_holes(stored, {"a": {0, 3}}, {}, {}) == [("a", 1, 1, 30)]
    # a join between 0 and 3: nothing
    assert late_holes({"a": [(0, 20), (3, 30), (2, 35), (1, 36)]}, {"a": {3}}, {"a": [25]}, {}) == []
