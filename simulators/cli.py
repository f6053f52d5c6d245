"""``stadtpuls simulate``: run the simulated city, a load test, a replay, or export the city's device registry.

Examples::

    stadtpuls simulate --city small --export-devices fleet.yaml          # registry only
    stadtpuls simulate --city small --speed 600 --duration 1d            # a day in 2.4 minutes, over MQTT
    stadtpuls simulate --start 2025-03-03 --duration 7d --speed max --out week.jsonl --truth truth.jsonl
    stadtpuls simulate --replay week.jsonl --speed max
    stadtpuls simulate --rate 30000 --count 1000000 --faults default      # load mode
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from .geo import CENTER
from .timebase import DAY_US, US, TimeParseError, iso_us, parse_duration, parse_start

__all__ = ["setup"]


def _speed(text: str) -> float:
    if text.strip().lower() in ("max", "0", "inf"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a speed factor: {text!r} (a number, or max)") from None
    if value < 0:
        raise argparse.ArgumentTypeError("speed must not be negative")
    return value


def _site_prefix(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:\-]{0,40}", text):
        raise argparse.ArgumentTypeError(f"a site id prefix is up to 40 letters, digits, _ . : -, not {text!r}")
    return text


def _center(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not LAT,LON: {text!r}") from None
    if not (-80 <= lat <= 80 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"not LAT,LON: {text!r}")
    return lat, lon


def setup(p: argparse.ArgumentParser) -> None:
    p.description = __doc__
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--city", choices=("small", "medium", "large"), default="medium", help="size of the town")
    p.add_argument("--seed", type=int, default=1, help="random seed; the same seed gives the same messages")
    p.add_argument("--start", default="now", help="simulated start (ISO date or date-time, UTC if naive; 'now')")
    p.add_argument(
        "--duration",
        default=None,
        help="simulated time to run (e.g. 6h, 7d; default 7d); in load mode: wall-clock time",
    )
    p.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="time factor: 1 real time, 600 ten minutes a second, max (or 0) as fast as possible; "
        "default 1 over MQTT, max with --out",
    )
    p.add_argument(
        "--format",
        dest="fmt",
        choices=("tts", "chirpstack", "mixed"),
        default="mixed",
        help="network server of the devices (mixed: half each)",
    )
    p.add_argument(
        "--faults",
        default="none",
        help="fault rates, e.g. default or duplicates=0.01,reorder=0.01,gaps=0.005,resets=0.001,"
        "skew=0.01,garbage=0.01,unknown=0.005,malformed=0.005; device faults (always on at natural rates) "
        "silent=0.0002 (per device-hour), drain=0.02 (share of devices), echoes=0.003 (per bin reading)",
    )
    p.add_argument("--timezone", default=None, help="local time zone of the town (default: STADTPULS_TIMEZONE)")
    p.add_argument(
        "--site-prefix",
        type=_site_prefix,
        default="",
        metavar="TEXT",
        help="start every site id with TEXT (nord-bin-0001): one of several towns on a hub; use a seed of its own",
    )
    p.add_argument("--center", type=_center, default=CENTER, metavar="LAT,LON", help="the town's centre")
    p.add_argument("--mqtt-url", default=None, help="broker (default: STADTPULS_MQTT_URL or mqtt://127.0.0.1:1883)")
    p.add_argument("--out", default=None, help="write messages to this file (JSON lines) instead of publishing")
    p.add_argument("--truth", default=None, help="write the ground truth (JSON lines + summary) to this file")
    p.add_argument(
        "--export-devices",
        default=None,
        metavar="FILE",
        help="write the device registry (YAML, or CSV for *.csv); alone: export and exit",
    )
    p.add_argument("--replay", default=None, metavar="FILE", help="publish the messages of a --out file")
    p.add_argument("--rate", type=float, default=None, help="load mode: uplinks per second (0: as fast as possible)")
    p.add_argument("--count", type=int, default=None, help="load mode: number of uplinks")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=main)


def _broker_url(args: argparse.Namespace) -> str:
    if args.mqtt_url:
        return str(args.mqtt_url)
    from stadtpuls.settings import load

    settings = load()
    return settings.mqtt_url.get_secret_value() if settings.mqtt_url is not None else "mqtt://127.0.0.1:1883"


def _timezone(args: argparse.Namespace) -> str:
    if args.timezone:
        return str(args.timezone)
    from stadtpuls.settings import load

    return load().timezone


def main(args: argparse.Namespace) -> int:
    from .faults import FaultConfig, FaultSpecError

    try:
        start_us = parse_start(args.start)
        duration_us = parse_duration(args.duration) if args.duration else 7 * DAY_US
        faults = FaultConfig.parse(args.faults)
    except (TimeParseError, FaultSpecError) as e:
        print(f"stadtpuls simulate: {e}", file=sys.stderr)
        return 2
    if args.export_devices:
        from .city import build_city
        from .export import write_registry

        city = build_city(args.city, args.seed, args.fmt, args.center, args.site_prefix)
        path = write_registry(city, args.export_devices)
        print(f"registry: {len(city.sites)} sites, {len(city.devices)} devices -> {path}")
        if not any((args.out, args.duration, args.rate is not None, args.count, args.replay, args.mqtt_url)):
            return 0
    try:
        if args.replay:
            return _replay(args)
        if args.rate is not None or args.count is not None:
            return _load(args, start_us, duration_us, faults)
        return _simulate(args, start_us, duration_us, faults)
    except OSError as e:
        print(f"stadtpuls simulate: {e}", file=sys.stderr)
        return 1


def _progress(args: argparse.Namespace, total: int | None, unit: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=args.no_progress, dynamic_ncols=True, file=sys.stderr)


def _sink(args: argparse.Namespace) -> Any:
    from .publish import FileSink, MqttSink

    if args.out:
        return FileSink(args.out)
    return MqttSink(_broker_url(args))


def _simulate(args: argparse.Namespace, start_us: int, duration_us: int, faults: Any) -> int:
    from .engine import SimConfig, Simulation
    from .publish import PublishError, pace
    from .truth import TruthWriter

    config = SimConfig(
        city=args.city,
        seed=args.seed,
        start_us=start_us,
        duration_us=duration_us,
        fmt=args.fmt,
        faults=faults,
        timezone=_timezone(args),
        site_prefix=args.site_prefix,
        center=args.center,
    )
    speed = args.speed if args.speed is not None else (0.0 if args.out else 1.0)
    sim = Simulation(config, TruthWriter(args.truth))
    t0 = time.monotonic()
    try:
        sink = _sink(args)
    except PublishError as e:
        print(f"stadtpuls simulate: {e}", file=sys.stderr)
        return 1
    hours = duration_us // (3600 * US)
    bar = _progress(args, hours, "h")
    shown = start_us
    try:
        for msg in pace(sim.messages(), speed, start_us):
            sink.send(msg)
            if msg.t_us - shown >= 3600 * US:
                step = (msg.t_us - shown) // (3600 * US)
                bar.update(step)
                shown += step * 3600 * US
        sink.close()
    except PublishError as e:
        print(f"stadtpuls simulate: {e}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    summary = sim.summary()
    seconds = time.monotonic() - t0
    print(
        f"simulated {args.city} city {iso_us(start_us)} .. {iso_us(sim.end_us)}: "
        f"{summary['measurements']} measurements, {summary['published']} messages sent in {seconds:.1f} s "
        f"({summary['published'] / max(seconds, 1e-9):.0f}/s), {summary['joins']} joins"
    )
    print("faults: " + (", ".join(f"{k}={v}" for k, v in summary["faults"].items() if v) or "none"))
    if args.truth:
        print(f"ground truth -> {args.truth}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .publish import PublishError, pace, read_messages

    messages = list(read_messages(args.replay))
    if not messages:
        print("stadtpuls simulate: nothing to replay", file=sys.stderr)
        return 1
    speed = args.speed if args.speed is not None else 0.0
    t0 = time.monotonic()
    try:
        sink = _sink(args)
        with _progress(args, len(messages), "msg") as bar:
            for msg in pace(messages, speed, messages[0].t_us):
                sink.send(msg)
                bar.update(1)
        sink.close()
    except PublishError as e:
        print(f"stadtpuls simulate: {e}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    print(f"replayed {len(messages)} messages in {seconds:.1f} s ({len(messages) / max(seconds, 1e-9):.0f}/s)")
    return 0


def _load(args: argparse.Namespace, start_us: int, duration_us: int, faults: Any) -> int:
    from .city import build_city
    from .engine import Message
    from .load import LoadRun, run
    from .mqtt_raw import RawMqttError, RawPublisher
    from .publish import FileSink
    from .truth import TruthWriter

    rate = float(args.rate or 0.0)
    if args.count is not None:
        count = int(args.count)
    elif rate > 0:
        count = int(rate * duration_us / US) if args.duration else int(rate * 60)
    else:
        print("stadtpuls simulate: load mode needs --count, or --rate with --duration", file=sys.stderr)
        return 2
    city = build_city(args.city, args.seed, args.fmt, args.center, args.site_prefix)
    load = LoadRun(city, seed=args.seed, start_us=start_us, rate=rate, faults=faults)
    truth = TruthWriter(args.truth) if args.truth else None
    if truth is not None:
        load.truth = truth.write
    try:
        if args.out:
            sink = FileSink(args.out)
            step = US / rate if rate > 0 else 100

            def send(items: list[tuple[bytes, bytes]]) -> None:
                for topic, payload in items:
                    sink.send(Message(start_us + int(sink.sent * step), topic.decode(), payload))

            closer = sink.close
        else:
            pub = RawPublisher(_broker_url(args))
            send, closer = pub.publish_many, pub.close
        with _progress(args, count, "msg") as bar:
            report = run(load, send, count=count, rate=rate, progress=bar.update)
        closer()
        if truth is not None:
            truth.close(
                {
                    "mode": "load",
                    "seed": args.seed,
                    "city": args.city,
                    "format": args.fmt,
                    "uplinks": report.uplinks,
                    "joins": report.joins,
                    "published": report.sent,
                    "faults": dict(report.faults),
                    "faults_config": faults.text(),
                }
            )
    except RawMqttError as e:
        print(f"stadtpuls simulate: {e}", file=sys.stderr)
        return 1
    print(
        f"load: {report.uplinks} uplinks, {report.sent} messages sent in {report.seconds:.1f} s "
        f"= {report.rate:.0f} messages/s (all acknowledged)"
        if not args.out
        else f"load: {report.uplinks} uplinks, {report.sent} messages written in {report.seconds:.1f} s"
    )
    print("faults: " + (", ".join(f"{k}={v}" for k, v in report.faults.items() if v) or "none"))
    return 0
