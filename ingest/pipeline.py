"""From raw MQTT messages to one :class:`~ingest.writer.PreparedBatch`.

``prepare`` parses the envelopes (:func:`ingest.envelopes.parse_batch`), resolves devices in the registry,
decodes and maps the registered devices' uplinks (:func:`ingest.domain.map_domain`), and collects every dead
letter: envelope and size rejects, unknown devices (whose raw uplink is stored all the same) and codec rejects.
Nothing here touches the database; the result is written by the writer in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC

import numpy as np

from stadtpuls.schema import DEAD_LETTERS, UPLINKS

from .authentic import SourceApplications, SourceCheck, application_refusals, future_rows, refusal
from .domain import map_domain
from .envelopes import EnvelopeBatch, parse_batch
from .envelopes.keys import stored_keys
from .envelopes.model import Join
from .envelopes.timestamps import datetime64_from_epoch
from .pgcopy import Field, Var, copy_fields, var_from_strings
from .registry import Registry
from .stops import StopTracker
from .writer import PreparedBatch, Tracking

__all__ = ["DeadLetter", "Pipeline", "Prepared", "dead_letter_fields"]

_RESET_CODES = {"UPLINK_F_CNT_RESET"}


@dataclass
class DeadLetter:
    index: int  # position of the message in the batch inputs
    stage: str
    reason: str
    dev_eui: str | None = None
    lns: str | None = None


@dataclass
class Prepared:
    batch: PreparedBatch
    envelopes: EnvelopeBatch
    dead: list[DeadLetter] = field(default_factory=list)


def dead_letter_fields(
    dead: Sequence[DeadLetter], topics: Sequence[str], payloads: Sequence[bytes], hub_time: float
) -> list[Field]:
    """COPY fields of ``dead_letters`` (received_at, topic, stage, reason, dev_eui, lns, payload)."""
    n = len(dead)
    topic_var, topic_null = var_from_strings([topics[d.index].replace("\x00", "") for d in dead])
    stage_var, _ = var_from_strings([d.stage for d in dead])
    reason_var, _ = var_from_strings([d.reason.replace("\x00", "") for d in dead])
    eui_var, eui_null = var_from_strings([d.dev_eui for d in dead])
    lns_var, lns_null = var_from_strings([d.lns for d in dead])
    payload_var, _ = var_from_strings([payloads[d.index] for d in dead])
    return copy_fields(
        DEAD_LETTERS.columns,
        {
            "received_at": np.full(n, datetime64_from_epoch(hub_time)),
            "topic": (topic_var, topic_null),
            "stage": stage_var,
            "reason": reason_var,
            "dev_eui": (eui_var, eui_null),
            "lns": (lns_var, lns_null),
            "payload": payload_var,
        },
    )


class Pipeline:
    """Holds what ``prepare`` needs across batches: the registry, the stop tracker and the applications each
    source may deliver (``applications``, by source position; see :func:`ingest.authentic.application_refusals`)."""

    def __init__(
        self,
        registry: Registry,
        *,
        max_message_bytes: int = 65536,
        store_simulated: bool = False,
        max_clock_skew: float = 300.0,
        recent_stops: Callable[[list[str]], dict[str, tuple[str, np.datetime64]]] | None = None,
        applications: SourceApplications = (),
    ) -> None:
        self.registry = registry
        self.max_message_bytes = max_message_bytes
        self.store_simulated = store_simulated
        self.max_clock_skew = max_clock_skew
        self.stops = StopTracker()
        self.recent_stops = recent_stops
        self.applications = applications
        self.source_check = SourceCheck()

    def prepare(
        self, topics: Sequence[str], payloads: Sequence[bytes], hub_time: float, sources: Sequence[int] | None = None
    ) -> Prepared:
        """``sources``: the position of each message's source (-1 or None: not known; no application check)."""
        env = parse_batch(
            topics, payloads, hub_time, max_message_bytes=self.max_message_bytes, store_simulated=self.store_simulated
        )
        reg = self.registry
        dead = [DeadLetter(r.index, r.stage, r.reason, lns=r.lns) for r in env.rejects]
        dev = reg.lookup(env.dev_eui, env.lns_device_id)
        src = None if sources is None else np.asarray(sources, dtype=np.int64)
        joins = self._joins(env, src, dead)
        env, dev = self._authentic(env, dev, topics, hub_time, dead, src)
        n = len(env)
        known = dev >= 0
        dev_eui = env.dev_eui.copy()
        if known.any():
            dev_eui[known] = reg.dev_euis[dev[known]]
        for i in np.flatnonzero(~known).tolist():
            eui = env.dev_eui[i].decode() or None
            dead.append(DeadLetter(int(env.index[i]), "device", "unknown device", eui, env.lns[i]))
        rows = np.flatnonzero(known)
        domain = map_domain(env, rows, dev[rows], reg, self.stops, self.recent_stops)
        for r, reason in domain.rejects:
            dead.append(DeadLetter(int(env.index[r]), "codec", reason, dev_eui[r].decode(), env.lns[r]))
        tracked = rows[~env.simulated[rows]]
        resets = self._resets(env, joins)
        batch = PreparedBatch(
            uplinks=self._uplink_fields(env, dev_eui, hub_time),
            n_uplinks=n,
            hub_clock=int(np.count_nonzero(env.hub_clock)),
            tables=domain.tables,
            tracking=Tracking(
                dev_eui=dev_eui[tracked],
                f_cnt=env.f_cnt[tracked],
                time=env.time[tracked],
                session=[env.session[i] for i in tracked.tolist()],
                resets=resets,
            ),
        )
        if dead:
            dead.sort(key=lambda d: d.index)
            batch.dead_letters = dead_letter_fields(dead, topics, payloads, hub_time)
            batch.n_dead = len(dead)
        return Prepared(batch, env, dead)

    def _authentic(
        self,
        env: EnvelopeBatch,
        dev: np.ndarray,
        topics: Sequence[str],
        hub_time: float,
        dead: list[DeadLetter],
        sources: np.ndarray | None,
    ) -> tuple[EnvelopeBatch, np.ndarray]:
        """The batch without the uplinks that are not authentic (:mod:`ingest.authentic`): their source may not
        deliver their application, their source disagrees, or their time lies ahead of the hub's clock; each
        becomes a dead letter at stage ``source``."""
        refused = dict(application_refusals(env, sources, self.applications))
        for r, reason in self.source_check.mismatches(env, topics, dev, self.registry):
            refused.setdefault(r, reason)
        for r in future_rows(env, hub_time, self.max_clock_skew).tolist():
            ahead = (env.time[r] - datetime64_from_epoch(hub_time)) / np.timedelta64(1, "s")
            detail = f"{env.time[r]}Z is {ahead:.0f} s ahead (more than {self.max_clock_skew:g} s)"
            refused.setdefault(r, f"time ahead of the hub's clock: {detail}")
        if not refused:
            return env, dev
        for r, reason in sorted(refused.items()):
            dead.append(DeadLetter(int(env.index[r]), "source", reason, env.dev_eui[r].decode() or None, env.lns[r]))
        keep = np.ones(len(env), dtype=bool)
        keep[list(refused)] = False
        return env.select(keep), dev[keep]

    def _joins(self, env: EnvelopeBatch, sources: np.ndarray | None, dead: list[DeadLetter]) -> list[Join]:
        """The batch's joins whose source may deliver their application; the others become dead letters."""
        if sources is None or not env.joins or not any(rule is not None for rule in self.applications):
            return env.joins
        kept = []
        for j in env.joins:
            k = int(sources[j.index])
            rule = self.applications[k] if 0 <= k < len(self.applications) else None
            if rule is None or j.app_id in rule[1]:
                kept.append(j)
            else:
                dead.append(DeadLetter(j.index, "source", refusal(rule, j.app_id), j.dev_eui or None, j.lns))
        return kept

    def _resets(self, env: EnvelopeBatch, joins: list[Join]) -> list[tuple[bytes, np.datetime64]]:
        """Joins and counter-reset logs of registered devices, as (DevEUI, time)."""
        reg = self.registry
        out: list[tuple[bytes, np.datetime64]] = []
        events = [(j.dev_eui, j.lns_device_id, j.time) for j in joins]
        events += [(e.dev_eui, None, e.time) for e in env.logs if e.code in _RESET_CODES]
        for eui, lns_id, when in events:
            i = reg.by_eui.get(eui.encode(), -1) if eui else -1
            if i < 0 and lns_id:
                i = reg.by_lns_id.get(lns_id, -1)
            if i >= 0:
                utc = when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
                t = np.datetime64(utc, "us")
                out.append((bytes(reg.dev_euis[i]), t))
        return out

    @staticmethod
    def _uplink_fields(env: EnvelopeBatch, dev_eui: np.ndarray, hub_time: float) -> list[Field]:
        gateway, gateway_null = var_from_strings(list(env.gateway_id))
        lns, _ = var_from_strings(list(env.lns))
        return copy_fields(
            UPLINKS.columns,
            {
                "time": env.time,
                "dedup_key": stored_keys(env.dedup_key),
                "dev_eui": dev_eui,
                "f_cnt": (env.f_cnt, ~env.f_cnt_present & env.simulated),
                "f_port": env.f_port,
                "payload": Var(env.buf, env.offsets),
                "rssi": (env.rssi, np.isnan(env.rssi)),
                "snr": (env.snr, np.isnan(env.snr)),
                "dr": (env.dr, env.dr < 0),
                "sf": (env.sf, env.sf < 0),
                "frequency": (env.frequency, env.frequency <= 0),
                "gateways": env.gateways,
                "gateway_id": (gateway, gateway_null),
                "lns": lns,
                "simulated": env.simulated,
                # the hub's receive time; for an uplink timed by the hub, its reading time (the writer tells such
                # rows by time = received_at)
                "received_at": np.where(env.hub_clock, env.time, datetime64_from_epoch(hub_time)),
            },
        )
