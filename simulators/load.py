"""Load mode: N uplinks a second (or as fast as possible) from the whole fleet, in real envelopes, with the same
fault kinds as the city simulation.

Messages are made a chunk at a time: devices in a fixed round-robin order, readings drawn and encoded per model in
one ``encode()`` call, timestamps and radio values formatted as arrays, envelopes filled from per-device
templates, and the chunk handed to the publisher (:class:`~simulators.mqtt_raw.RawPublisher` for MQTT) at once.
Rare messages (joins, the first uplink of a session, unknown devices) go through the ordinary envelope builders.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .city import City, stream
from .faults import FaultConfig, FaultInjector, Rogues
from .loadgen import Template, encode_random, make_template
from .radio import CHANNELS_HZ, RadioModel, airtime_us
from .sessions import Ids, Sessions
from .timebase import US, iso_bytes, iso_us
from .uplinks import Network, UplinkFacts, chirpstack_join, chirpstack_uplink, stamps, topic, tts_join, tts_uplink

__all__ = ["LoadReport", "LoadRun", "run"]


@dataclass
class LoadReport:
    sent: int = 0  # messages handed to the broker (uplinks, joins, duplicates, injected)
    uplinks: int = 0
    joins: int = 0
    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class LoadRun:
    """Generates load chunks for ``city``; ``chunk(n)`` returns the next n uplinks' ``(topic, payload)`` pairs
    (with faults applied), ``messages`` counts them."""

    def __init__(
        self,
        city: City,
        *,
        seed: int,
        start_us: int,
        rate: float,
        faults: FaultConfig | None = None,
        net: Network | None = None,
    ) -> None:
        self.city = city
        self.net = net or Network()
        self.start_us = start_us
        self.step_us = US / rate if rate > 0 else 100.0  # spacing of simulated times
        self.rng = stream(seed, "load")
        self.order = self.rng.permutation(len(city.devices))
        self.radio = RadioModel(city, seed)
        self.best_gw = np.argmax(self.radio.mean_rssi, axis=1)
        self.sessions = Sessions(city, seed, start_us)
        self.ids = Ids(seed, start_us)
        self.faults = FaultInjector(faults or FaultConfig(), seed, start_us)
        self.rogues = Rogues(city, seed, start_us)
        self.topics = [topic(self.net, d).encode() for d in city.devices]
        self.templates: dict[int, Template] = {}
        self._texts: list[bytes] = [b""] * len(city.devices)
        self._names: dict[str, list[str]] = {}
        self.is_tts = np.array([d.lns == "tts" for d in city.devices])
        self.f_cnt = np.ones(len(city.devices), dtype=np.int64)
        self.index = 0
        self.report = LoadReport(faults=self.faults.counts)
        #: called with one line per delivered uplink (load mode records no quantities: the readings are random)
        self.truth: Callable[[dict[str, Any]], None] | None = None
        self._pending: list[tuple[bytes, bytes]] = []
        for d in city.devices:  # every device joined before the run
            self.sessions.join(d.index, start_us - 60 * US)
            self.templates[d.index] = self._template(d.index)

    def _template(self, dev: int) -> Template:
        d = self.city.devices[dev]
        tmpl = make_template(
            self.net, d, self.sessions.current[dev], self.city.gateways[int(self.best_gw[dev])], int(self.radio.sf[dev])
        )
        names = self._names.setdefault(d.lns, tmpl.names)
        if names != tmpl.names:
            raise RuntimeError(f"template slots of {d.dev_eui} differ from the other {d.lns} devices")
        self._texts[dev] = tmpl.text
        return tmpl

    def _join(self, dev: int, t_us: int) -> tuple[bytes, bytes]:
        d = self.city.devices[dev]
        s = self.sessions.join(dev, t_us)
        self.templates[dev] = self._template(dev)
        self.f_cnt[dev] = 0
        body = (
            tts_join(self.net, d, s, t_us, self.ids.ulids(t_us // 1000, 5))
            if d.lns == "tts"
            else chirpstack_join(self.net, d, s, t_us, self.ids.uuid())
        )
        self.report.joins += 1
        return topic(self.net, d, "join").encode(), orjson.dumps(body)

    def _facts(
        self, dev: int, f_cnt: int, f_port: int, payload: bytes, t_us: int, device: Any = None, session: Any = None
    ) -> UplinkFacts:
        d = device or self.city.devices[dev]
        gw = self.city.gateways[int(self.best_gw[dev])]
        sf = int(self.radio.sf[dev])
        return UplinkFacts(
            d,
            session or self.sessions.current[dev],
            f_cnt,
            f_port,
            payload,
            t_us,
            sf,
            int(CHANNELS_HZ[1]),
            1,
            int(airtime_us(np.array([len(payload)]), np.array([sf]))[0]),
            [(gw, -100.0, 5.0)],
            self.ids.uuid(),
            self.ids.ulids(t_us // 1000, 5),
            ["AAAAAA=="],
            [self.ids.u32()],
            stamps(t_us, 0, d.lns),
        )

    def chunk(self, n: int) -> list[tuple[bytes, bytes]]:
        rng = self.rng
        devs = self.city.devices
        k = self.index + np.arange(n)
        self.index += n
        dev = self.order[k % len(devs)]
        t = self.start_us + np.round(k * self.step_us).astype(np.int64)
        plan = self.faults.plan(n)
        out: list[tuple[bytes, bytes]] = []
        for r in np.flatnonzero(plan.reset & (self.f_cnt[dev] > 0)).tolist():  # rejoins before this chunk
            out.append(self._join(int(dev[r]), int(t[0]) - US))
            self.faults.counts["resets"] += 1
        # per device consecutive counters: the rank of each row among the rows of its device
        by_dev = np.argsort(dev, kind="stable")
        sorted_dev = dev[by_dev]
        first = np.flatnonzero(np.r_[True, sorted_dev[1:] != sorted_dev[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[by_dev] = np.arange(n) - np.repeat(first, np.diff(np.r_[first, n]))
        f_cnt = self.f_cnt[dev] + rank
        self.f_cnt += np.bincount(dev, minlength=len(devs))
        ports, payloads = encode_random(self.city, dev, rng)
        t_sent = t + plan.skew_us
        for name in ("gaps", "skew"):
            self.faults.counts[name] += int((plan.gap if name == "gaps" else plan.skew_us != 0).sum())
        bodies = self._fill(dev, t_sent, f_cnt, ports, payloads)
        dev_list = dev.tolist()
        if not self.faults.config.enabled and self.truth is None:
            out.extend(zip([self.topics[d] for d in dev_list], bodies, strict=True))
            self.report.uplinks += n
            self.report.sent += len(out)
            return out
        order = np.arange(n, dtype=np.float64)
        held = np.flatnonzero(plan.reorder)
        order[held] += len(devs) + 0.5  # after the device's next uplink (or at the end of the chunk)
        self.faults.counts["reorder"] += len(held)
        dup_after = plan.duplicate_after.tolist()
        delayed: list[list[Any]] = []
        for i in np.argsort(order, kind="stable").tolist():
            if plan.gap[i]:
                continue
            d = dev_list[i]
            payload = payloads[i]
            body = bodies[i]
            port = int(ports[i])
            if plan.garbage[i]:
                port, payload = self.faults.garbage(devs[d].model.codec, port, payload)
                body = self._slow(d, int(f_cnt[i]), port, payload, int(t_sent[i]))
                self.faults.counts["garbage"] += 1
            item = (self.topics[d], body)
            out.append(item)
            self.report.uplinks += 1
            if self.truth is not None:
                faults = [
                    name
                    for name, on in (
                        ("garbage", plan.garbage[i]),
                        ("skew", plan.skew_us[i] != 0),
                        ("duplicates", dup_after[i] >= 0),
                        ("reorder", plan.reorder[i]),
                    )
                    if on
                ]
                self.truth(
                    {
                        "t": iso_us(int(t[i])),
                        "dev_eui": devs[d].dev_eui,
                        "site_id": devs[d].site_id,
                        "codec": devs[d].codec,
                        "lns": devs[d].lns,
                        "f_port": port,
                        "f_cnt": int(f_cnt[i]),
                        "bytes_hex": payload.hex(),
                        "faults": faults,
                        "skew_s": float(plan.skew_us[i]) / US,
                    }
                )
            if delayed:
                for entry in delayed:
                    entry[0] -= 1
                for entry in [e for e in delayed if e[0] < 0]:
                    out.append(entry[1])
                    delayed.remove(entry)
            if dup_after[i] >= 0:
                delayed.append([dup_after[i], item])
                self.faults.counts["duplicates"] += 1
            if plan.unknown[i]:
                rogue, session, rf = self.rogues.next(devs[d])
                f = self._facts(d, rf, int(ports[i]), payloads[i], int(t_sent[i]), rogue, session)
                build = tts_uplink if rogue.lns == "tts" else chirpstack_uplink
                out.append((topic(self.net, rogue).encode(), orjson.dumps(build(self.net, f))))
                self.faults.counts["unknown"] += 1
                self.report.uplinks += 1
            if plan.malformed[i]:
                out.append((item[0], self.faults.malformed(body)))
                self.faults.counts["malformed"] += 1
        out.extend(e[1] for e in delayed)
        self.report.sent += len(out)
        return out

    def _fill(
        self, dev: np.ndarray, t: np.ndarray, f_cnt: np.ndarray, ports: np.ndarray, payloads: list[bytes]
    ) -> list[bytes]:
        """Every message of the chunk from its device's template (first uplinks of a session: full builder).
        The values are made per network server, whose templates share one slot order."""
        n = len(dev)
        bodies: list[bytes] = [b""] * n
        texts = self._texts
        for is_tts in (True, False):
            rows = np.flatnonzero(self.is_tts[dev] == is_tts)
            if not len(rows):
                continue
            sub = dev[rows]
            cols = self._columns(is_tts, sub, t[rows], f_cnt[rows], ports[rows], [payloads[i] for i in rows.tolist()])
            values = zip(*[cols[name] for name in self._names["tts" if is_tts else "chirpstack"]], strict=True)
            for i, d, v in zip(rows.tolist(), sub.tolist(), values, strict=True):
                bodies[i] = texts[d] % v
        for i in np.flatnonzero(f_cnt == 0).tolist():
            bodies[i] = self._slow(int(dev[i]), 0, int(ports[i]), payloads[i], int(t[i]))
        return bodies

    def _slow(self, dev: int, f_cnt: int, f_port: int, payload: bytes, t_us: int) -> bytes:
        f = self._facts(dev, f_cnt, f_port, payload, t_us)
        return orjson.dumps(tts_uplink(self.net, f) if f.device.lns == "tts" else chirpstack_uplink(self.net, f))

    def _columns(
        self, tts: bool, dev: np.ndarray, t: np.ndarray, f_cnt: np.ndarray, ports: np.ndarray, payloads: list[bytes]
    ) -> dict[str, list[bytes]]:
        """Per-message values as bytes, one list per template slot of the network server."""
        rng = self.rng
        n = len(dev)
        chan = rng.integers(1, len(CHANNELS_HZ), n)  # channel 0 would drop channel_index from TTS messages
        rssi = np.round(self.radio.mean_rssi[dev, self.best_gw[dev]] + rng.normal(0, 2.5, n))
        snr = np.round(np.minimum(rssi + 117 + rng.normal(0, 1.0, n), 13.5) * 4) / 4
        cols = {
            "f_port": _text(ports),
            "f_cnt": _text(f_cnt),
            "rssi": _text(rssi.astype(np.int64)),
            "snr": [b"%.2f" % x for x in snr.tolist()],
            "channel": _text(chan),
            "payload": list(map(base64.b64encode, payloads)),
        }
        if tts:
            ulid = self.ids.ulid_rows(t // 1000, 2)
            air = airtime_us(np.array([len(p) for p in payloads]), self.radio.sf[dev])
            cols.update(
                cid_as=[u[0].encode() for u in ulid],
                cid_ns=[u[1].encode() for u in ulid],
                ns_time=iso_bytes(t, b""),
                as_time=iso_bytes(t + 187_000, b""),
                gw_time=iso_bytes(t - 29_000, b""),
                gw_ts=_text(t % (1 << 32)),
                frequency_text=_text(CHANNELS_HZ[chan]),
                airtime=[b"%.6f" % (a / 1e6) for a in air.tolist()],
            )
        else:
            raw = np.frombuffer(self.ids.take(16 * n), dtype=np.uint8).reshape(n, 16).copy()
            raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
            raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
            cols.update(
                dedup=_uuid_text(raw),
                ns_time=iso_bytes(t, b""),
                later=iso_bytes(t + 63_000, b""),
                frequency=_text(CHANNELS_HZ[chan]),
                uplink_id=_text(rng.integers(0, 1 << 32, n)),
            )
        return cols


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_POS = np.array([k + (k >= 8) + (k >= 12) + (k >= 16) + (k >= 20) for k in range(32)])


def _uuid_text(raw: np.ndarray) -> list[bytes]:
    """Canonical UUID text of 16-byte rows, vectorised."""
    out = np.full((len(raw), 36), ord("-"), dtype=np.uint8)
    digits = np.stack([_HEX[raw >> 4], _HEX[raw & 0x0F]], axis=2).reshape(len(raw), 32)
    out[:, _UUID_POS] = digits
    return out.view("S36").ravel().tolist()


def _text(values: np.ndarray) -> list[bytes]:
    returned: list[bytes] = np.asarray(values).astype("S20").tolist()
    return returned


def run(
    load: LoadRun,
    send: Callable[[list[tuple[bytes, bytes]]], None],
    *,
    count: int,
    rate: float,
    chunk_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Send ``count`` uplinks at ``rate`` per second (0: as fast as possible) in chunks."""
    t0 = time.monotonic()
    done = 0
    while done < count:
        n = min(chunk_size, count - done)
        if rate > 0:
            delay = t0 + done / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        send(load.chunk(n))
        done += n
        if progress is not None:
            progress(n)
    load.report.seconds = time.monotonic() - t0
    return load.report
