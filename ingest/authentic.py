"""Authentic sources: only the network server speaks for a sensor.

An uplink counts only when what it says about itself agrees: the topic it was published on names the same
application and device as its body (The Things Stack ``v3/{application}[@{tenant}]/devices/{device id}/up``,
ChirpStack ``application/{application id}/device/{DevEUI}/...``), and the application and network-server device id
in its body are the ones the device is registered with (``devices.lns_application_id``, ``app`` or ``app@tenant``,
and ``devices.lns_device_id``), where the registration names them. An uplink that disagrees is a dead letter at stage
``source`` with the mismatch named: it is not stored, so it can neither change a reading nor take the key of the
real uplink. A topic of another layout (a network server configured with its own topic template) is not compared;
the registration still is. A source configured with a list of network-server applications (``applications`` in
:mod:`ingest.sources`) delivers only messages of those: each batch carries the position of every message's source,
and the uplinks and joins of any other application are refused (:func:`application_refusals`). Timestamps ahead of
the hub's clock by more than the allowed skew are refused here too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .envelopes import EnvelopeBatch
from .envelopes.model import LNS_TTS
from .registry import Registry

__all__ = ["SourceApplications", "application_refusals", "future_rows", "source_mismatches", "topic_ids"]

#: per source position (``Message.source``): (source name, the applications it may deliver), None: any
SourceApplications = Sequence[tuple[str, frozenset[str]] | None]


def topic_ids(topic: str) -> tuple[str, str | None, str] | None:
    """(application, tenant, device) named by a network server's uplink topic, or None for another layout. The
    device is The Things Stack's device id, or ChirpStack's DevEUI in lower case."""
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices":
        app, _, tenant = parts[1].partition("@")
        return app, tenant or None, parts[3]
    if len(parts) >= 5 and parts[0] == "application" and parts[2] == "device":
        return parts[1], None, parts[3].lower()
    return None


def source_mismatches(
    env: EnvelopeBatch, topics: Sequence[str], dev: npt.NDArray[np.int64], registry: Registry
) -> list[tuple[int, str]]:
    """(row, reason) of every uplink row whose topic, body and registration disagree; ``dev`` is the rows' device
    index in ``registry`` (-1 unknown)."""
    n = len(env)
    if n == 0:
        return []
    named = [topic_ids(topics[i]) for i in env.index.tolist()]
    app = env.app_id
    tts = env.lns == LNS_TTS
    # the device as the body names it, in the form its topic uses
    body_dev = np.where(tts, env.lns_device_id, np.char.decode(env.dev_eui).astype(object))
    t_app = np.array([t[0] if t else None for t in named], dtype=object)
    t_dev = np.array([t[2] if t else None for t in named], dtype=object)
    checked = t_app != None  # noqa: E711 - elementwise over an object array
    bad = checked & ((t_app != app) | ((body_dev != "") & (body_dev != None) & (t_dev != body_dev)))  # noqa: E711
    known = dev >= 0
    if known.any() and len(registry.app_ids):
        want_app = np.full(n, None, dtype=object)
        want_lns = np.full(n, None, dtype=object)
        want_app[known] = registry.app_ids[dev[known]]
        want_lns[known] = registry.lns_ids[dev[known]]
        has_app = want_app != None  # noqa: E711
        if has_app.any():
            split = [w.partition("@") if w is not None else ("", "", "") for w in want_app.tolist()]
            w_app = np.array([s[0] for s in split], dtype=object)
            w_tenant = np.array([s[2] for s in split], dtype=object)
            t_tenant = np.array([t[1] if t else None for t in named], dtype=object)
            bad |= has_app & (w_app != app)
            bad |= has_app & (w_tenant != "") & (t_tenant != None) & (t_tenant != w_tenant)  # noqa: E711
        has_lns = (want_lns != None) & (env.lns_device_id != None)  # noqa: E711
        bad |= has_lns & (want_lns != env.lns_device_id)
    return [(r, _reason(env, r, named[r], dev[r], registry)) for r in np.flatnonzero(bad).tolist()]


def _reason(env: EnvelopeBatch, r: int, named: tuple[str, str | None, str] | None, d: int, registry: Registry) -> str:
    """The first disagreement of row ``r``, in words."""
    app = env.app_id[r]
    tts = env.lns[r] == LNS_TTS
    device = env.lns_device_id[r] if tts else env.dev_eui[r].decode()
    if named is not None:
        t_app, t_tenant, t_dev = named
        if t_app != app:
            return f"topic and message disagree: topic names application {t_app!r}, the message {app!r}"
        if device and t_dev != device:
            what = "device id" if tts else "DevEUI"
            return f"topic and message disagree: topic names device {t_dev!r}, the message's {what} is {device!r}"
    if d >= 0:
        want = registry.app_ids[d]
        if want is not None:
            w_app, _, w_tenant = want.partition("@")
            if w_app != app:
                return f"not the registered source: application {app!r} is not the device's registered {w_app!r}"
            if w_tenant and named is not None and named[1] is not None and named[1] != w_tenant:
                return f"not the registered source: tenant {named[1]!r} is not the device's registered {w_tenant!r}"
        lns_id = registry.lns_ids[d]
        if lns_id is not None and env.lns_device_id[r] is not None and env.lns_device_id[r] != lns_id:
            return f"not the registered source: device id {env.lns_device_id[r]!r} is not the registered {lns_id!r}"
    return "not the registered source"


def application_refusals(
    env: EnvelopeBatch, sources: npt.NDArray[np.int64] | None, allowed: SourceApplications
) -> list[tuple[int, str]]:
    """(row, reason) of every uplink row whose application its source may not deliver; ``sources`` is the source
    position of every message of the batch (-1: not known, not checked). One comparison per allowed application
    over the rows of each limited source: nothing is done for sources without a list."""
    if sources is None or not len(env) or not any(rule is not None for rule in allowed):
        return []
    src = sources[env.index]
    out: list[tuple[int, str]] = []
    for k, rule in enumerate(allowed):
        if rule is None:
            continue
        rows = np.flatnonzero(src == k)
        if not len(rows):
            continue
        app = env.app_id[rows]
        ok = np.zeros(len(rows), dtype=bool)
        for a in rule[1]:
            ok |= app == a
        out += [(r, refusal(rule, env.app_id[r])) for r in rows[~ok].tolist()]
    return out


def refusal(rule: tuple[str, frozenset[str]], app: str | None) -> str:
    """The dead-letter reason of a message of application ``app`` that the source of ``rule`` may not deliver."""
    name, apps = rule
    return f"application not allowed for the source: {app!r} is not one of {name!r}'s {', '.join(sorted(apps))}"


def future_rows(env: EnvelopeBatch, hub_time: float, max_skew_s: float) -> npt.NDArray[np.int64]:
    """Rows whose reading time lies more than ``max_skew_s`` seconds ahead of the hub's receive time."""
    limit = np.datetime64(int((hub_time + max_skew_s) * 1e6), "us")
    return np.flatnonzero(env.time > limit)
