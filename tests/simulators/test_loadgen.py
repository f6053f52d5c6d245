"""The load fleet: uplinks the hub reads back and decodes, garbage of every kind, each message distinct."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from stadtpuls.ingest.codecs import get
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators.loadgen import GARBAGE_KINDS, make_fleet, make_garbage, make_uplinks


def test_load_fleet_uplinks_parse_and_decode_with_their_devices_codecs() -> None:
    fleet = make_fleet(8)
    stream = make_uplinks(fleet, 80)
    batch = parse_batch([t for t, _ in stream], [p for _, p in stream])
    assert len(batch) == 80 and not batch.rejects
    codec_of = {d.dev_eui: d.codec for d in fleet.devices}
    rows = [batch.row(i) for i in range(len(batch))]
    assert Counter(r["f_cnt"] for r in rows) == {k: 8 for k in range(1, 11)}  # frame counters count per device
    for r in rows:
        codec = get(codec_of[r["dev_eui"]])
        payload = np.frombuffer(r["payload"], np.uint8)
        decoded = codec.decode(np.array([r["f_port"]]), payload, np.array([0, len(payload)]))
        assert decoded.ok.all(), (r["dev_eui"], r["payload"].hex())


@pytest.mark.parametrize(("devices", "seed"), [(20, 2), (100, 2), (100, 3), (500, 5)])
def test_load_fleet_garbage_is_distinct_and_of_every_kind(devices: int, seed: int) -> None:
    bad = make_garbage(make_fleet(devices), 1_000, seed=seed)
    assert Counter(kind for *_, kind in bad) == {kind: 250 for kind in GARBAGE_KINDS}
    assert len({payload for _, payload, _ in bad}) == 1_000  # the hub keeps one dead letter per distinct message
