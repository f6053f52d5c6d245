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
from typing import Any

import numpy as np
import numpy.typing as npt

from .envelopes import EnvelopeBatch
from .envelopes.model import LNS_TTS
from .registry import Registry

__all__ = [
    "SourceApplications",
    "SourceCheck",
    "application_refusals",
    "future_rows",
    "refusal",
    "source_mismatches",
    "topic_ids",
]

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


class SourceCheck:
    """The topic/body/registration check of :func:`source_mismatches`, remembered per distinct (topic, application,
    device id, DevEUI, registered device, format): a device's uplinks all look alike, so a batch costs a comparison
    of each uplink's topic and body fields with its device's first uplink of the batch, one dictionary lookup per
    device and uplink that differs, and the check itself once per distinct key (again after a registry change).
    The memory is bounded: it starts over after ``limit`` distinct keys (a flood of forged topics cannot grow
    it)."""

    def __init__(self, limit: int = 1 << 16) -> None:
        self.limit = limit
        self._registry: Registry | None = None
        self._verdicts: dict[tuple[Any, ...], str] = {}

    def mismatches(
        self, env: EnvelopeBatch, topics: Sequence[str], dev: npt.NDArray[np.int64], registry: Registry
    ) -> list[tuple[int, str]]:
        """(row, reason) of every uplink row whose topic, body and registration disagree; ``dev`` is the rows'
        device index in ``registry`` (-1 unknown)."""
        if not len(env):
            return []
        if registry is not self._registry or len(self._verdicts) > self.limit:
            self._registry, self._verdicts = registry, {}
        n = len(env)
        row_topics = np.empty(n, dtype=object)
        row_topics[:] = [topics[i] for i in env.index.tolist()]
        # The first row of each device stands for the rows of that device whose topic and body fields equal its
        # own: same key, same verdict. Only those first rows and the rows that differ from theirs are looked up.
        _, first_of, group = np.unique(dev, return_index=True, return_inverse=True)
        first = first_of[group]
        alike = _same_bytes(env.dev_eui, first)
        for column in (row_topics, env.lns, env.app_id, env.lns_device_id):
            alike &= np.asarray(column == column[first], dtype=bool)
        own = ~alike
        own[first_of] = True
        rows = np.flatnonzero(own)
        keys = list(
            zip(
                row_topics[rows].tolist(),
                env.app_id[rows].tolist(),
                env.lns_device_id[rows].tolist(),
                env.dev_eui[rows].tolist(),
                dev[rows].tolist(),
                env.lns[rows].tolist(),
                strict=True,
            )
        )
        verdicts = self._verdicts
        found = list(map(verdicts.get, keys))
        if None in found:
            for k, v in enumerate(found):
                if v is None:
                    topic, app, lns_id, eui, d, lns = keys[k]
                    found[k] = verdicts[keys[k]] = _disagreement(topic, app, lns_id, eui, d, lns, registry) or ""
        bad = [k for k, v in enumerate(found) if v]
        if not bad:
            return []
        reason = np.full(n, -1, dtype=np.int64)  # per row: its disagreement's position in found, -1 none
        reason[rows[bad]] = bad
        reason = np.where(own, reason, reason[first])
        hit = np.flatnonzero(reason >= 0)
        return [(r, found[k]) for r, k in zip(hit.tolist(), reason[hit].tolist(), strict=True)]


def _same_bytes(column: npt.NDArray[np.bytes_], first: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Per row, whether a bytes column (DevEUIs, S16) holds the same value as in row ``first``; compared as 8-byte
    words (numpy's comparison of byte strings costs ten times as much)."""
    if column.dtype.itemsize % 8:
        return np.asarray(column == column[first], dtype=bool)
    words = np.ascontiguousarray(column).view(np.uint64).reshape(len(column), -1)
    same: npt.NDArray[np.bool_] = words[:, 0] == words[first, 0]
    for k in range(1, words.shape[1]):
        same &= words[:, k] == words[first, k]
    return same


def source_mismatches(
    env: EnvelopeBatch, topics: Sequence[str], dev: npt.NDArray[np.int64], registry: Registry
) -> list[tuple[int, str]]:
    """(row, reason) of every uplink row whose topic, body and registration disagree; ``dev`` is the rows' device
    index in ``registry`` (-1 unknown). (:class:`SourceCheck` remembers the verdicts across batches.)"""
    return SourceCheck().mismatches(env, topics, dev, registry)


def _disagreement(
    topic: str, app: str | None, lns_id: str | None, eui: bytes, d: int, lns: str, registry: Registry
) -> str | None:
    """The first disagreement of one uplink, in words (None: it agrees)."""
    named = topic_ids(topic)
    tts = lns == LNS_TTS
    device = lns_id if tts else eui.decode()
    if named is not None:
        t_app, t_tenant, t_dev = named
        if t_app != app:
            return f"topic and message disagree: topic names application {t_app!r}, the message {app!r}"
        if device and t_dev != device:
            what = "device id" if tts else "DevEUI"
            return f"topic and message disagree: topic names device {t_dev!r}, the message's {what} is {device!r}"
    if d >= 0 and len(registry.app_ids):
        want = registry.app_ids[d]
        if want is not None:
            w_app, _, w_tenant = want.partition("@")
            if w_app != app:
                return f"not the registered source: application {app!r} is not the device's registered {w_app!r}"
            if w_tenant and named is not None and named[1] is not None and named[1] != w_tenant:
                return f"not the registered source: tenant {named[1]!r} is not the device's registered {w_tenant!r}"
        want_lns = registry.lns_ids[d]
        if want_lns is not None and lns_id is not None and lns_id != want_lns:
            return f"not the registered source: device id {lns_id!r} is not the registered {want_lns!r}"
    return None


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
