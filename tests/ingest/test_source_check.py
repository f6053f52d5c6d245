"""``SourceCheck.mismatches`` gives every uplink the verdict of checking it on its own (``_disagreement``), whether
its topic's other uplinks agree with it or not, on a first batch and again from its memory."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pytest

from stadtpuls.ingest.authentic import SourceCheck, _disagreement
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators.messages import chirpstack_topic, chirpstack_uplink, tts_topic, tts_uplink

APPS = ["city-parking", "city-waste", "attacker-app"]
CS_APPS = ["b3a7c1de-0a6f-4c39-9d0e-1f2a3b4c5d6e", "0d7e3c1a-1111-4c39-9d0e-1f2a3b4c5d6e"]
EUIS = [f"02020202020202{k:02x}" for k in range(6)]
T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _message(rng: random.Random, k: int) -> tuple[str, bytes]:
    """An uplink whose topic names one device and application, and whose body names the same or another."""
    when = T0 + timedelta(seconds=k)
    eui = rng.choice(EUIS)
    if rng.random() < 0.5:
        app, device = rng.choice(APPS), f"dev-{EUIS.index(eui)}"
        body_app = app if rng.random() < 0.8 else rng.choice(APPS)
        body_device = device if rng.random() < 0.8 else f"dev-{rng.randrange(len(EUIS))}"
        body = tts_uplink(
            device_id=body_device, app_id=body_app, dev_eui=eui, received_at=when, f_port=1, payload=b"\x95", f_cnt=k
        )
        return tts_topic(app, device, tenant=rng.choice(["ttn", "evil", None])), orjson.dumps(body)
    app = rng.choice(CS_APPS)
    body_app = app if rng.random() < 0.8 else rng.choice(CS_APPS)
    body_eui = eui if rng.random() < 0.8 else rng.choice(EUIS)
    body = chirpstack_uplink(dev_eui=body_eui, application_id=body_app, time=when, f_port=1, payload=b"\x95", f_cnt=k)
    return chirpstack_topic(app, eui), orjson.dumps(body)


def _registry() -> Any:
    """What the check reads of a registry: each device's registered application and network-server device id."""
    app_ids = np.array(["city-parking@ttn", CS_APPS[0], None, "city-waste", CS_APPS[1], None], dtype=object)
    lns_ids = np.array(["dev-0", None, "dev-2", None, None, "dev-5"], dtype=object)
    return SimpleNamespace(app_ids=app_ids, lns_ids=lns_ids)


def _one_by_one(env: Any, topics: list[str], dev: np.ndarray, registry: Any) -> list[tuple[int, str]]:
    out = []
    for r in range(len(env)):
        topic = topics[int(env.index[r])]
        eui, d = env.dev_eui[r].tobytes().rstrip(b"\x00"), int(dev[r])
        v = _disagreement(topic, env.app_id[r], env.lns_device_id[r], eui, d, env.lns[r], registry)
        if v:
            out.append((r, v))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_every_uplink_gets_its_own_verdict(seed: int) -> None:
    rng = random.Random(seed)
    registry = _registry()
    check = SourceCheck()
    for batch in range(3):  # the later batches are answered partly from the check's memory
        messages = [_message(rng, 1000 * batch + k) for k in range(rng.randrange(1, 300))]
        topics, payloads = [t for t, _ in messages], [p for _, p in messages]
        env = parse_batch(topics, payloads, (T0 + timedelta(days=1)).timestamp())
        assert len(env) == len(messages)
        # device index by DevEUI, some unknown (-1)
        dev = np.array([EUIS.index(e.decode()) if e[-1:] != b"5" else -1 for e in env.dev_eui.tolist()])
        expected = _one_by_one(env, topics, dev, registry)
        assert check.mismatches(env, topics, dev, registry) == expected
        assert 0 < len(expected) < len(env) or len(env) < 20  # forged and genuine uplinks side by side


def test_a_forged_uplink_on_a_genuine_topic_is_found_after_its_topic_was_cleared() -> None:
    """The first uplink of a topic agrees and is remembered; a later one on the same topic whose body names another
    application is refused, and so is the same forgery when its topic's first uplink is the forged one."""
    registry = _registry()
    good = tts_uplink(
        device_id="dev-0", app_id="city-parking", dev_eui=EUIS[0], received_at=T0, f_port=1, payload=b"\x95"
    )
    bad = {**good, "end_device_ids": {**good["end_device_ids"], "application_ids": {"application_id": "attacker-app"}}}
    topic = tts_topic("city-parking", "dev-0", tenant="ttn")
    check = SourceCheck()
    for order in ([good, good, bad, good], [bad, good, bad]):
        payloads = [orjson.dumps(b) for b in order]
        env = parse_batch([topic] * len(order), payloads, T0.timestamp())
        found = check.mismatches(env, [topic] * len(order), np.zeros(len(order), dtype=np.int64), registry)
        assert [r for r, _ in found] == [i for i, b in enumerate(order) if b is bad]
        assert all("topic and message disagree" in reason for _, reason in found)
