"""The simulation: the city's models advance hour by hour, their measurements become real payload bytes in real
network-server messages (with joins, frame counters, radio metadata and injected faults), and every measurement
goes to the ground truth.

``Simulation(config).messages()`` yields :class:`Message` objects in publication order; their ``t_us`` is the
simulated instant at which the network server publishes them. The same config gives the same messages, byte for
byte.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from stadtpuls.ingest.envelopes.keys import derive_key

from .buses import BusModel
from .city import City, build_city
from .collection import Schedule
from .environment import EnvironmentModel
from .faults import DeviceFault, FaultConfig, FaultInjector, Rogues
from .geo import CENTER
from .health import Health
from .parking import ParkingModel
from .radio import RadioModel, airtime_us
from .readings import Reading, expand, merge_sorted
from .sessions import Ids, Sessions
from .timebase import DAY_US, HOUR_US, US, iso_array, iso_us
from .truth import TruthWriter
from .uplinks import (
    Network,
    UplinkFacts,
    chirpstack_join,
    chirpstack_uplink,
    stamps,
    stamps_array,
    topic,
    tts_join,
    tts_uplink,
)
from .waste import WasteModel
from .weather import Weather

__all__ = ["Message", "SimConfig", "Simulation"]

MODEL_NAMES = ("waste", "parking", "buses", "environment")


@dataclass(slots=True)
class Message:
    t_us: int  # when the network server publishes it
    topic: str
    payload: bytes


@dataclass
class SimConfig:
    city: str = "medium"
    seed: int = 1
    start_us: int = 1_740_960_000 * US  # 2025-03-03 00:00 UTC, a Monday
    duration_us: int = 7 * DAY_US
    fmt: str = "mixed"  # tts | chirpstack | mixed
    faults: FaultConfig = field(default_factory=FaultConfig)
    timezone: str = "Europe/Berlin"
    schedule: Schedule | None = None  # waste collection; None: the fixed weekly round
    service_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    models: tuple[str, ...] = MODEL_NAMES
    network: Network = field(default_factory=Network)
    site_prefix: str = ""  # starts every site id: one town of several on a hub
    center: tuple[float, float] = CENTER


class Simulation:
    def __init__(self, config: SimConfig, truth: TruthWriter | None = None, city: City | None = None) -> None:
        c = self.config = config
        for name in c.models:
            if name not in MODEL_NAMES:
                raise ValueError(f"unknown model {name!r} ({', '.join(MODEL_NAMES)})")
        self.city = city or build_city(c.city, c.seed, c.fmt, c.center, c.site_prefix)
        tz = ZoneInfo(c.timezone)
        weather = Weather(c.seed, tz)
        start = c.start_us
        self.waste = WasteModel(self.city, c.seed, start, tz, weather, c.schedule, c.service_days, c.faults)
        self.parking = ParkingModel(self.city, c.seed, start, tz, weather, c.faults)
        self.buses = BusModel(self.city, c.seed, start, tz)
        self.environment = EnvironmentModel(self.city, c.seed, start, tz, weather, c.faults)
        self.models = [getattr(self, name) for name in c.models]
        self.radio = RadioModel(self.city, c.seed)
        self.sessions = Sessions(self.city, c.seed, start)
        self.ids = Ids(c.seed, start)
        self.faults = FaultInjector(c.faults, c.seed, start)
        self.rogues = Rogues(self.city, c.seed, start)
        self.truth = truth if truth is not None else TruthWriter()
        self.net = c.network
        self.readings = 0
        self.uplinks = 0
        self.joins = 0
        self.published = 0
        self._out: list[Message] = []
        self._held: dict[int, list[tuple[Message, int]]] = {}
        self._delayed: list[list[Any]] = []
        self._rejoins: list[tuple[int, int]] = []  # (device, join instant) of each counter reset

    @property
    def end_us(self) -> int:
        return self.config.start_us + self.config.duration_us

    def messages(self) -> Iterator[Message]:
        end = self.end_us
        for w0 in range(self.config.start_us, end, HOUR_US):
            readings: list[Reading] = []
            for model in self.models:
                for batch in model.step(w0, w0 + HOUR_US):
                    readings.extend(expand(batch.take(batch.t_us < end)))
            self._window(merge_sorted(readings))
            yield from self._drain()
        for held in self._held.values():  # devices that never sent again: their held messages go out last
            for m, after in held:
                self._push(m)
                if after >= 0:
                    self._delayed.append([after, m])
        self._held.clear()
        for _, m in self._delayed:
            self._push(m)
        self._delayed.clear()
        yield from self._drain()
        self.truth.close(self.summary())

    def _drain(self) -> list[Message]:
        out, self._out = self._out, []
        return out

    def _push(self, msg: Message) -> None:
        self._out.append(msg)
        self.published += 1
        if self._delayed:
            keep: list[list[Any]] = []
            ready: list[list[Any]] = []
            for entry in self._delayed:
                entry[0] -= 1
                (ready if entry[0] < 0 else keep).append(entry)
            self._delayed = keep
            for _, m in ready:
                self._out.append(m)
                self.published += 1

    def _deliver(self, msg: Message, dev: int, *, hold: bool, duplicate_after: int) -> None:
        """Publish ``msg`` (or hold it back until the device's next message), and its duplicate
        ``duplicate_after`` messages after it."""
        if hold:
            self._held.setdefault(dev, []).append((msg, duplicate_after))
            return
        released = [(msg, duplicate_after), *self._held.pop(dev, [])]
        for m, after in released:
            self._push(m)
            if after >= 0:
                self._delayed.append([after, m])

    def _join(self, dev: int, t_us: int) -> None:
        device = self.city.devices[dev]
        s = self.sessions.join(dev, t_us)
        if device.lns == "tts":
            body = tts_join(self.net, device, s, t_us, self.ids.ulids(t_us // 1000, 5))
        else:
            body = chirpstack_join(self.net, device, s, t_us, self.ids.uuid())
        self.joins += 1
        self._push(Message(t_us, topic(self.net, device, "join"), orjson.dumps(body)))

    def _body(self, facts: UplinkFacts) -> bytes:
        build = tts_uplink if facts.device.lns == "tts" else chirpstack_uplink
        return orjson.dumps(build(self.net, facts))

    def dedup_key(self, facts: UplinkFacts) -> str:
        """The uplink's deduplication key in the hub: ChirpStack's deduplicationId; for TTS the UUID the hub derives
        from application, device, session, frame counter and NS receive time (formats README 1.5). The tables store
        it in 64 bits (``uplinks.dedup_key``: :func:`stadtpuls.ingest.envelopes.keys.stored_key` of it)."""
        if facts.device.lns == "tts":
            key = derive_key(
                "tts",
                self.net.tts_application,
                facts.device.lns_device_id,
                facts.session.session_key_id,
                facts.f_cnt,
                facts.stamps.server,
            )
            return str(uuid.UUID(bytes=key))
        return facts.dedup_id

    def _window(self, readings: list[Reading]) -> None:
        n = len(readings)
        if n == 0:
            return
        ids = self.ids
        devices = self.city.devices
        gateways = self.city.gateways
        dev = np.array([r.dev for r in readings], dtype=np.int64)
        radio = self.radio.sample(dev, np.array([len(r.payload) for r in readings]))
        plan = self.faults.plan(n)
        t_sent = np.array([r.t_us for r in readings], dtype=np.int64) + plan.skew_us
        tts = np.array([devices[d].lns == "tts" for d in dev.tolist()])
        stamp = stamps_array(t_sent, np.frombuffer(ids.take(2 * n), dtype=np.uint16) % 1000, tts)
        true_us = np.array([r.t_us for r in readings], dtype=np.int64)
        true_iso = iso_array(true_us)
        ulid_rows = iter(ids.ulid_rows(true_us[tts] // 1000, 5))
        masked = np.where(radio.heard, radio.rssi, -np.inf)
        order = np.argsort(-masked, axis=1, kind="stable").tolist()
        heard_n = radio.heard.sum(axis=1).tolist()
        rssi, snr = radio.rssi.tolist(), radio.snr.tolist()
        sf, freq, chan, air = (a.tolist() for a in (radio.sf, radio.frequency, radio.channel, radio.airtime_us))
        counts = self.faults.counts
        for k, r in enumerate(readings):
            device = devices[r.dev]
            is_tts = device.lns == "tts"
            faults: list[str] = []
            rejoin = bool(plan.reset[k]) and self.sessions.get(r.dev) is not None
            if rejoin or self.sessions.get(r.dev) is None:
                join_us = r.t_us - (3 + ids.u32() % 7) * US
                self._join(r.dev, join_us)
                if rejoin:
                    faults.append("resets")
                    self._rejoins.append((r.dev, join_us))
            session = self.sessions.current[r.dev]
            f_cnt = self.sessions.next_f_cnt(r.dev)
            f_port, payload, airtime = r.f_port, r.payload, air[k]
            if plan.garbage[k]:
                f_port, payload = self.faults.garbage(device.model.codec, f_port, payload)
                airtime = int(airtime_us(np.array([len(payload)]), np.array([sf[k]]))[0])
                faults.append("garbage")
            if plan.gap[k]:
                faults.append("gaps")
            skew = int(plan.skew_us[k])
            if skew:
                faults.append("skew")
            gws = [(gateways[g], rssi[k][g], snr[k][g]) for g in order[k][: heard_n[k]]]
            facts = UplinkFacts(
                device,
                session,
                f_cnt,
                f_port,
                payload,
                int(t_sent[k]),
                sf[k],
                freq[k],
                chan[k],
                airtime,
                gws,
                "" if is_tts else ids.uuid(),
                next(ulid_rows) if is_tts else [],
                [ids.token(24 if is_tts else 4) for _ in gws],
                [ids.u32() for _ in gws],
                stamp[k],
            )
            line: dict[str, Any] = {
                "t": true_iso[k],
                "dev_eui": device.dev_eui,
                "site_id": device.site_id,
                "kind": self.city.site_by_id[device.site_id].kind,
                "codec": device.model.codec,
                "lns": device.lns,
                "f_port": f_port,
                "f_cnt": f_cnt,
                "bytes_hex": payload.hex(),
                "quantities": r.quantities,
                "dedup": self.dedup_key(facts),
                "faults": faults,
            }
            if skew:
                line["skew_s"] = skew / US
            line.update(r.extra)
            self.readings += 1
            if plan.gap[k]:
                for name in faults:
                    counts[name] += 1
                self.truth.write(line)
                continue
            if plan.duplicate_after[k] >= 0:
                faults.append("duplicates")
            if plan.reorder[k]:
                faults.append("reorder")
            for name in faults:
                counts[name] += 1
            self.truth.write(line)
            msg = Message(r.t_us, topic(self.net, device), self._body(facts))
            self.uplinks += 1
            self._deliver(msg, r.dev, hold=bool(plan.reorder[k]), duplicate_after=int(plan.duplicate_after[k]))
            if plan.unknown[k]:
                self._unknown(facts, r)
            if plan.malformed[k]:
                counts["malformed"] += 1
                self._push(Message(r.t_us, msg.topic, self.faults.malformed(msg.payload)))
                self.truth.write(
                    {
                        "t": iso_us(r.t_us),
                        "dev_eui": device.dev_eui,
                        "site_id": None,
                        "kind": "malformed",
                        "lns": device.lns,
                        "topic": msg.topic,
                        "quantities": {},
                        "dedup": None,
                        "faults": ["malformed"],
                    }
                )

    def _unknown(self, facts: UplinkFacts, r: Reading) -> None:
        """An unregistered device of the same model sends the same (valid) reading at the same time."""
        t_us = r.t_us
        rogue, session, f_cnt = self.rogues.next(facts.device)
        f = UplinkFacts(
            rogue,
            session,
            f_cnt,
            r.f_port,
            r.payload,
            t_us,
            facts.sf,
            facts.frequency,
            facts.channel,
            facts.airtime_us,
            facts.gateways,
            self.ids.uuid(),
            self.ids.ulids(t_us // 1000, 5),
            facts.tokens,
            facts.uplink_ids,
            stamps(t_us, self.ids.u32() % 1000, rogue.lns),
        )
        self.faults.counts["unknown"] += 1
        self.uplinks += 1
        self._push(Message(t_us, topic(self.net, rogue), self._body(f)))
        self.truth.write(
            {
                "t": iso_us(t_us),
                "dev_eui": rogue.dev_eui,
                "site_id": None,
                "kind": "unknown",
                "codec": rogue.model.codec,
                "lns": rogue.lns,
                "f_port": f.f_port,
                "f_cnt": f_cnt,
                "bytes_hex": f.payload.hex(),
                "quantities": {},
                "dedup": self.dedup_key(f),
                "faults": ["unknown"],
            }
        )

    def device_faults(self) -> list[DeviceFault]:
        """What went wrong with the devices so far (see :mod:`.faults`): every outage, every battery that drains
        fast, every counter reset; ordered by start, then device."""
        devices = self.city.devices
        out = [DeviceFault("resets", devices[d].dev_eui, t) for d, t in self._rejoins]
        groups: list[tuple[str, np.ndarray, Health]] = [
            ("waste", self.waste.dev, self.waste.health),
            ("parking", self.parking.dev, self.parking.health),
            ("environment", self.environment.dev, self.environment.health),
        ]
        for name, devs, health in groups:
            if name not in self.config.models:
                continue
            dev = devs.tolist()
            out += [DeviceFault("silent", devices[dev[k]].dev_eui, t0, t1) for k, t0, t1 in health.outage_log]
            dies = health.dies_at()
            for k in np.flatnonzero(health.dying).tolist():
                volts, per_day = float(health.v0[k]), float(health.drain[k])
                out.append(
                    DeviceFault("drain", devices[dev[k]].dev_eui, self.config.start_us, int(dies[k]), volts, per_day)
                )
        return sorted(out, key=lambda f: (f.start_us, f.dev_eui, f.kind))

    def summary(self) -> dict[str, Any]:
        c = self.config
        return {
            "seed": c.seed,
            "city": self.city.size.name,
            "format": c.fmt,
            "start": iso_us(c.start_us),
            "end": iso_us(self.end_us),
            "faults_config": c.faults.text(),
            "devices": len(self.city.devices),
            "sites": len(self.city.sites),
            "measurements": self.readings,
            "uplinks": self.uplinks,
            "joins": self.joins,
            "published": self.published,
            "faults": dict(self.faults.counts),
            "pickups": len(self.waste.pickups),
            "overflow_bin_days": len(self.waste.overflow_days),
            "parking_changes": self.parking.changes,
            "outages": self.waste.health.outages + self.parking.health.outages + self.environment.health.outages,
        }
