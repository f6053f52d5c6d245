"""Sessions and identifiers: joins restart frame counters; ULIDs and UUIDs are well formed and reproducible."""

from __future__ import annotations

import re
import uuid

import numpy as np

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.sessions import Ids, Sessions, ulid


def _crockford_decode(text: str) -> int:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    n = 0
    for ch in text:
        n = n * 32 + alphabet.index(ch)
    return n


def test_ulids_carry_their_millisecond_time_and_random_bits():
    rand = bytes(range(10))
    text = ulid(1_700_000_000_123, rand)
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", text)
    value = _crockford_decode(text)
    assert value >> 80 == 1_700_000_000_123 and value & ((1 << 80) - 1) == int.from_bytes(rand, "big")
    a, b = Ids(1, 0), Ids(1, 0)
    rows = a.ulid_rows(np.array([5, 6]), 3)
    raw = b.take(60)
    assert rows == [
        [ulid(5, raw[0:10]), ulid(5, raw[10:20]), ulid(5, raw[20:30])],
        [ulid(6, raw[30:40]), ulid(6, raw[40:50]), ulid(6, raw[50:60])],
    ]


def test_ids_are_reproducible_per_seed_and_start_and_uuids_are_version_4():
    assert Ids(1, 0).uuid() == Ids(1, 0).uuid() != Ids(1, 60_000_000).uuid()
    u = uuid.UUID(Ids(2, 0).uuid())
    assert u.version == 4 and u.variant == uuid.RFC_4122


def test_a_join_restarts_the_frame_counter_with_a_new_session():
    city = build_city("small", 1)
    sessions = Sessions(city, 1, 0)
    first = sessions.join(0, 0)
    assert [sessions.next_f_cnt(0) for _ in range(3)] == [0, 1, 2]
    second = sessions.join(0, 10)
    assert sessions.next_f_cnt(0) == 0
    assert second.session_key_id != first.session_key_id and second.dev_addr != first.dev_addr
    assert re.fullmatch(r"[0-9a-f]{8}", second.dev_addr)
    assert sessions.joins == 2
