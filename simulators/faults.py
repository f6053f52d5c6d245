"""Fault injection: what goes wrong between a sensor and the hub, each kind switchable by rate and counted.

=========== ===================================================================================================
kind        effect on the uplink (rate = probability per measurement)
=========== ===================================================================================================
duplicates  the same message is delivered twice (a few messages apart)
reorder     the message is held back until after the device's next message
gaps        the message is lost before the broker; its frame counter is used up
resets      the device rejoins first (a join message), its frame counter restarts at 0
skew        the network server's clock is off by 1 .. 90 s for this message
garbage     the payload is replaced by bytes the device's codec rejects
unknown     an extra message from a device the hub does not know (a valid payload)
malformed   an extra message on a real topic whose JSON is broken
=========== ===================================================================================================

``gaps``, ``resets`` and ``garbage`` exclude each other; the others combine freely.

Device faults (:class:`~simulators.health.Health`) are always on at each model's natural rate; naming one in a
spec sets its rate for every model:

=========== ===================================================================================================
kind        effect on a device (rate)
=========== ===================================================================================================
silent      the device fails and falls silent for 2 hours to 3 days (probability per device and hour)
drain       the battery drains 40-80 times faster, until the device dies (share of the devices)
echoes      a bin's distance sensor reads a spurious echo, any fill (probability per measurement)
=========== ===================================================================================================

The simulation reports what it planned of these and of ``resets`` (:meth:`Simulation.device_faults`), one
:class:`DeviceFault` each, so a test can say which alerts the hub should raise without asking the hub.

Exceptions::

    FaultSpecError      a --faults value that cannot be read (attribute: text)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import orjson

from stadtpuls.ingest.codecs import get

from .city import City, Device, stream
from .sessions import Session

__all__ = [
    "DEFAULT_RATES",
    "DEVICE_KINDS",
    "KINDS",
    "DeviceFault",
    "FaultConfig",
    "FaultInjector",
    "FaultPlan",
    "FaultSpecError",
    "Rogues",
]

KINDS = ("duplicates", "reorder", "gaps", "resets", "skew", "garbage", "unknown", "malformed")
DEVICE_KINDS = ("silent", "drain", "echoes")
DEFAULT_RATES = {
    "duplicates": 0.01,
    "reorder": 0.01,
    "gaps": 0.005,
    "resets": 0.001,
    "skew": 0.01,
    "garbage": 0.01,
    "unknown": 0.005,
    "malformed": 0.005,
}


class FaultSpecError(ValueError):
    def __init__(self, text: str, message: str) -> None:
        super().__init__(f"{message}: {text!r}")
        self.text = text


@dataclass(frozen=True)
class FaultConfig:
    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FaultConfig:
        """``none``, ``default`` (the rates of :data:`DEFAULT_RATES`) or ``kind=rate,...``; ``default`` can be
        combined with overrides (``default,gaps=0.05``)."""
        rates: dict[str, float] = {}
        for part in (text or "none").split(","):
            part = part.strip()
            if not part or part == "none":
                continue
            if part == "default":
                rates.update(DEFAULT_RATES)
                continue
            name, sep, value = part.partition("=")
            if not sep or name.strip() not in KINDS + DEVICE_KINDS:
                raise FaultSpecError(part, f"expected kind=rate with kind one of {', '.join(KINDS + DEVICE_KINDS)}")
            try:
                rate = float(value)
            except ValueError:
                raise FaultSpecError(part, "rate is not a number") from None
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError(part, "rate must lie in 0..1")
            rates[name.strip()] = rate
        if rates.get("gaps", 0) + rates.get("resets", 0) + rates.get("garbage", 0) > 1.0:
            raise FaultSpecError(text or "", "gaps + resets + garbage must not exceed 1")
        return cls(tuple(sorted(rates.items())))

    def rate(self, kind: str) -> float:
        return dict(self.rates).get(kind, 0.0)

    def device_rate(self, kind: str, natural: float) -> float:
        """A device fault's rate: the one named in the spec, else the model's ``natural`` rate."""
        return dict(self.rates).get(kind, natural)

    @property
    def enabled(self) -> bool:
        """Whether any message fault is switched on (device faults never change the messages' form)."""
        return any(r > 0 for k, r in self.rates if k in KINDS)

    def text(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.rates) or "none"


@dataclass(frozen=True)
class DeviceFault:
    """One planned device fault: ``silent`` (no uplink in ``[start_us, end_us)``), ``drain`` (the battery falls
    from ``volts`` at ``start_us`` by ``per_day`` volts a day and the device is silent from ``end_us``, when it
    reaches its cutoff) or ``resets`` (a rejoin at ``start_us``: the join message's instant)."""

    kind: str
    dev_eui: str
    start_us: int
    end_us: int | None = None
    volts: float | None = None
    per_day: float | None = None


@dataclass
class FaultPlan:
    """Decisions for n consecutive uplinks."""

    gap: np.ndarray
    reset: np.ndarray
    garbage: np.ndarray
    skew_us: np.ndarray  # 0: no skew
    duplicate_after: np.ndarray  # -1: no duplicate, else messages between original and copy
    reorder: np.ndarray
    unknown: np.ndarray
    malformed: np.ndarray


class FaultInjector:
    def __init__(self, config: FaultConfig, seed: int, start_us: int) -> None:
        self.config = config
        self.rng = stream(seed ^ (start_us // 1_000_000 & 0xFFFFFFFF), "faults")
        self.counts = {k: 0 for k in KINDS}

    def plan(self, n: int) -> FaultPlan:
        c = self.config
        u = self.rng.random((n, 8))
        v = self.rng.random((n, 3))
        g, r = c.rate("gaps"), c.rate("resets")
        content = u[:, 0]
        gap = content < g
        reset = (content >= g) & (content < g + r)
        garbage = (content >= g + r) & (content < g + r + c.rate("garbage"))
        deliver = ~gap
        skew = deliver & (u[:, 1] < c.rate("skew"))
        magnitude = (1 + v[:, 0] * 89) * np.where(v[:, 1] < 0.5, -1, 1)
        duplicate = deliver & (u[:, 2] < c.rate("duplicates"))
        return FaultPlan(
            gap=gap,
            reset=reset,
            garbage=garbage,
            skew_us=np.where(skew, np.round(magnitude * 1e6), 0).astype(np.int64),
            duplicate_after=np.where(duplicate, (v[:, 2] * 20).astype(np.int64), -1),
            reorder=deliver & (u[:, 3] < c.rate("reorder")),
            unknown=u[:, 4] < c.rate("unknown"),
            malformed=u[:, 5] < c.rate("malformed"),
        )

    def garbage(self, codec_id: str, f_port: int, payload: bytes) -> tuple[int, bytes]:
        """A frame the codec rejects: a truncated copy of the real payload, else short random bytes on one of
        the device's fPorts (checked with the codec itself)."""
        codec = get(codec_id)
        rng = self.rng
        candidates: list[tuple[int, bytes]] = []
        if len(payload) > 1:
            candidates += [(f_port, payload[:cut]) for cut in rng.permutation(np.arange(1, len(payload))).tolist()]
        for port in (f_port, *codec.f_ports):
            for size in (2, 1, 3, 5):
                candidates.append((port, rng.bytes(size)))
        for port, data in candidates:
            if "errors" in codec.decode_row(port, data) and data:
                return port, data
        raise RuntimeError(f"no undecodable frame found for {codec_id}")  # every reference codec has one

    def malformed(self, body: bytes) -> bytes:
        """The message cut off somewhere in its second half, or with a stray byte where a quote belongs."""
        rng = self.rng
        if rng.random() < 0.5:
            out = body[: int(len(body) * rng.uniform(0.5, 0.95))]
        else:
            k = body.find(b'"', int(len(body) * rng.uniform(0.1, 0.9)))
            out = body[:k] + b"\x00" + body[k + 1 :] if k >= 0 else body[:-1]
        try:
            orjson.loads(out)
        except orjson.JSONDecodeError:
            return out
        return body[:-1]


# --- unknown devices ------------------------------------------------------------------------------------------
# A neighbour's sensors that share the network server application, or devices that were never registered: they
# send valid payloads of a reference model; the hub must keep their raw uplinks and dead-letter them.


class Rogues:
    """Two unknown devices per (model, network server), created when first needed, each with its own session."""

    def __init__(self, city: City, seed: int, start_us: int) -> None:
        self.city = city
        self.rng = stream(seed ^ (start_us // 1_000_000 & 0xFFFFFFFF), "rogues")
        self.pool: dict[tuple[str, str], list[tuple[Device, Session]]] = {}
        self.sent = 0

    def next(self, like: Device) -> tuple[Device, Session, int]:
        """An unknown device of ``like``'s model and network server, its session and its next frame counter."""
        key = (like.model.key, like.lns)
        pool = self.pool.get(key)
        if pool is None:
            pool = []
            for k in range(2):
                eui = like.model.eui_prefix + self.rng.bytes(5).hex()
                while eui in self.city.device_by_eui:
                    eui = like.model.eui_prefix + self.rng.bytes(5).hex()
                raw = self.rng.bytes(20)
                device = Device(
                    -1,
                    eui,
                    like.model,
                    f"unregistered {like.model.key} {k + 1}",
                    "",
                    f"{like.model.key}-{eui[-6:]}-unregistered",
                    like.lat,
                    like.lon,
                    like.lns,
                    like.report_interval_s,
                )
                session = Session(
                    ("26" if like.lns == "tts" else "01") + raw[:3].hex(),
                    base64.b64encode(raw[4:20]).decode(),
                    int(self.rng.integers(0, 500)),
                    0,
                )
                pool.append((device, session))
            self.pool[key] = pool
        device, session = pool[self.sent % len(pool)]
        self.sent += 1
        f_cnt = session.f_cnt
        session.f_cnt += 1
        return device, session, f_cnt
