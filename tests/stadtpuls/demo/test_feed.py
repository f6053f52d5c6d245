"""The demo feed's time-lapse: timestamps up to the anchor stay, later ones are compressed onto the clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
import pytest

from stadtpuls.demo.feed import TimeLapse
from stadtpuls.simulators.engine import SimConfig, Simulation

US = 1_000_000
ANCHOR = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def us(dt: datetime) -> int:
    return int(dt.timestamp()) * US


def test_time_lapse_maps_an_hour_after_the_anchor_onto_a_minute_at_60x() -> None:
    lapse = TimeLapse(us(ANCHOR), 60)
    assert lapse.map_us(us(ANCHOR) + 3600 * US) == us(ANCHOR) + 60 * US
    assert lapse.map_us(us(ANCHOR) - 3600 * US) == us(ANCHOR) - 3600 * US  # history keeps its time


def test_time_lapse_rewrites_every_rfc3339_stamp_keeping_its_precision_and_zone() -> None:
    lapse = TimeLapse(us(ANCHOR), 60)
    msg = {
        "received_at": "2026-03-02T13:00:00.123456789Z",
        "time": "2026-03-02T13:00:00.000000+00:00",
        "past": "2026-03-02T11:00:00Z",
        "name": "Parkhaus 2026-03-02T13:00:00 Nord",  # not a JSON string that is only a timestamp
        "count": 20260302,
    }
    out = orjson.loads(lapse.payload(orjson.dumps(msg)))
    assert out["received_at"] == "2026-03-02T12:01:00.002057613Z"
    assert out["time"] == "2026-03-02T12:01:00.000000+00:00"
    assert out["past"] == "2026-03-02T11:00:00Z"
    assert out["name"] == msg["name"] and out["count"] == msg["count"]


def test_time_lapse_refuses_slow_motion() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        TimeLapse(us(ANCHOR), 0.5)


def test_time_lapse_moves_every_stamp_of_simulated_messages_in_both_formats() -> None:
    """Real simulator messages two to three hours after the anchor: every timestamp lands two to three minutes
    after it (TTS and ChirpStack envelopes alike)."""
    start = us(ANCHOR) + 2 * 3600 * US
    sim = Simulation(SimConfig(city="small", seed=3, start_us=start, duration_us=3600 * US, fmt="mixed"))
    lapse = TimeLapse(us(ANCHOR), 60)
    stamp = re.compile(r'"(\d{4}-\d\d-\d\dT[\d:.]+)(?:Z|\+00:00)"')
    low, high = ANCHOR.timestamp() + 119, ANCHOR.timestamp() + 181
    seen = {"tts": 0, "chirpstack": 0}
    for msg in sim.messages():
        stamps = stamp.findall(lapse.payload(msg.payload).decode())
        assert stamps, msg.payload[:200]
        for text in stamps:
            t = datetime.fromisoformat(text[:26]).replace(tzinfo=UTC).timestamp()
            assert low <= t <= high, text
        seen["tts" if msg.topic.startswith("v3/") else "chirpstack"] += 1
    assert seen["tts"] > 0 and seen["chirpstack"] > 0
