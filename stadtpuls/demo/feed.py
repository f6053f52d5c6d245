"""The demo's sensor feed: the simulated city as a time-lapse that stays consistent with the wall clock.

The hub reads "now" from the clock (free spaces now, sensors silent past their heartbeat), so a feed whose
timestamps run ahead of the clock would be invisible until the clock caught up. The feed therefore:

1. catches up: the simulation starts ``history`` before now and everything up to now is published at once, with its
   own timestamps, so every sensor has reported its current state within the first seconds (parking sensors and
   bins report at least hourly) and bins have a fill history for the pickup plan;
2. runs as a time-lapse: after that, ``speed`` simulated seconds pass per real second, and each message's
   timestamps are mapped onto the clock (``now0 + (t - now0) / speed``) and published at that instant.

Run by ``stadtpuls demo`` as ``python -m stadtpuls.demo.feed``; SIGTERM stops it after the message in flight.
"""

from __future__ import annotations

import argparse
import heapq
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from ..logs import configure_logging, get_logger

__all__ = ["TimeLapse", "main"]

log = get_logger("stadtpuls.demo.feed")
US = 1_000_000
NS_PER_US = 1000
# RFC 3339 UTC timestamps inside the JSON of LNS messages ("...Z" or "...+00:00", 0-9 fraction digits)
_STAMP = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|\+00:00)"')
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TimeLapse:
    """Maps simulated instants after ``anchor_us`` onto the clock: ``anchor + (t - anchor) / speed``."""

    def __init__(self, anchor_us: int, speed: float) -> None:
        if speed < 1:
            raise ValueError("speed must be at least 1")
        self.anchor_ns = anchor_us * NS_PER_US
        self.speed = speed

    def map_us(self, t_us: int) -> int:
        return self.map_ns(t_us * NS_PER_US) // NS_PER_US

    def map_ns(self, t_ns: int) -> int:
        if t_ns <= self.anchor_ns:
            return t_ns
        return self.anchor_ns + int((t_ns - self.anchor_ns) / self.speed)

    def _replace(self, m: re.Match[bytes]) -> bytes:
        whole, frac, zone = m.group(1), m.group(2) or b"", m.group(3)
        seconds = int((datetime.fromisoformat(whole.decode()).replace(tzinfo=UTC) - _EPOCH).total_seconds())
        digits = len(frac)
        t_ns = seconds * 1_000_000_000 + (int(frac.ljust(9, b"0")) if digits else 0)
        mapped = self.map_ns(t_ns)
        s, ns = divmod(mapped, 1_000_000_000)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)).encode()
        if digits:
            text += b"." + str(ns).rjust(9, "0")[:digits].encode()
        return b'"' + text + zone + b'"'

    def payload(self, data: bytes) -> bytes:
        """The message with every timestamp mapped onto the clock."""
        return _STAMP.sub(self._replace, data)


def _messages(city: str, seed: int, fmt: str, start_us: int, timezone: str, towns: int = 1) -> Iterator[Any]:
    """The simulated city's messages; with ``towns`` > 1 the demo towns' (:mod:`.towns`), interleaved in time."""
    from stadtpuls.simulators.engine import SimConfig, Simulation

    from .towns import towns as demo_towns

    def town(seed: int, **where: Any) -> Iterator[Any]:
        config = SimConfig(
            city=city, seed=seed, start_us=start_us, duration_us=3650 * 86400 * US, fmt=fmt, timezone=timezone, **where
        )
        return Simulation(config).messages()

    several = demo_towns(towns)
    if not several:
        yield from town(seed)
        return
    streams = [town(t.seed(seed), site_prefix=t.site_prefix, center=t.center) for t in several]
    yield from heapq.merge(*streams, key=lambda m: m.t_us)


def run(
    mqtt_url: str,
    *,
    city: str,
    seed: int,
    fmt: str,
    speed: float,
    history_s: float,
    timezone: str,
    stop: threading.Event,
    towns: int = 1,
) -> int:
    from stadtpuls.simulators.engine import Message
    from stadtpuls.simulators.publish import MqttSink, PublishError

    now_us = int(time.time() * US)
    lapse = TimeLapse(now_us, speed)
    sink = MqttSink(mqtt_url, client_id="stadtpuls-demo-feed")
    sent, caught_up, t0 = 0, False, time.monotonic()
    try:
        for msg in _messages(city, seed, fmt, now_us - int(history_s * US), timezone, towns):
            if stop.is_set():
                break
            if msg.t_us > now_us:
                if not caught_up:
                    caught_up = True
                    log.info("history published", extra={"messages": sent, "seconds": round(time.monotonic() - t0, 1)})
                due = lapse.map_us(msg.t_us) / US
                while not stop.is_set() and (delay := due - time.time()) > 0:
                    stop.wait(min(delay, 1.0))
                if stop.is_set():
                    break
                msg = Message(lapse.map_us(msg.t_us), msg.topic, lapse.payload(msg.payload))
            sink.send(msg)
            sent += 1
        sink.close(timeout=10)
    except PublishError as e:
        log.error("publishing failed", extra={"error": str(e)})
        return 1
    log.info("feed stopped", extra={"messages": sent})
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..settings import load

    p = argparse.ArgumentParser(prog="python -m stadtpuls.demo.feed", description=__doc__.split("\n\n")[0])
    p.add_argument("--city", choices=("small", "medium", "large"), default="medium")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--format", dest="fmt", choices=("tts", "chirpstack", "mixed"), default="mixed")
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second after catching up")
    p.add_argument("--history", type=float, default=24 * 3600.0, help="seconds of history published at once")
    p.add_argument("--towns", type=int, choices=(1, 2), default=1, help="towns side by side (2: the demo's tenants)")
    args = p.parse_args(argv)
    settings = load()
    configure_logging(settings.log_level, settings.log_format)
    if settings.mqtt_url is None:
        log.error("STADTPULS_MQTT_URL is not set")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return run(
        settings.mqtt_url.get_secret_value(),
        city=args.city,
        seed=args.seed,
        fmt=args.fmt,
        speed=args.speed,
        history_s=args.history,
        timezone=settings.timezone,
        stop=stop,
        towns=args.towns,
    )


if __name__ == "__main__":
    sys.exit(main())
