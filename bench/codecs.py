"""Codec throughput: vectorised batch decoding against a per-message decoder, for every registered codec.

For each codec a batch of N (default 1,000,000) payloads in the device's real layouts is built with the
codec's own ``encode()``, as a realistic mix of frame types in shuffled order. The vectorised ``decode`` runs
on the whole batch; the per-message baseline (the codec's straightforward ``decode_row``, one call per payload, as a
network server's JavaScript decoder runs) runs on the first 50,000 payloads and is scaled. Each figure is the
median of several runs in this same process, the decoders alternating, with the garbage collector paused
during each timed call as ``timeit`` does. Building JSON dicts (``Decoded.objects()``) is in neither timing.

``decode`` returns a complete ``Decoded``; columns of Python objects (texts, lists) and columns that only a
few rows have keep their decoded values as written and build their dense array of n rows when first read
(the ingest path reads only the numeric fields its domain mapping needs). The "all columns" figure is
``decode`` followed by reading every column's values once, for reference; the ratio and the target are on
``decode``.

Script codecs (JavaScript ``decodeUplink`` in the QuickJS engine, ``bench/scripts/``): a simple one-field codec
and a multi-field one, each on ``--script-n`` (default 200,000) payloads, batch mode (one ``decode`` of the whole
batch: one engine call per chunk, the loop in JavaScript) against one engine call per message (``decode_row`` on
the first 20,000 payloads, scaled).

    python -m bench.codecs [--n 1000000] [--runs 3] [--codec netvox/r718x] [--script-n 200000] [--scripts-only]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stadtpuls.ingest.codecs import all_codecs
from stadtpuls.ingest.codecs.script import ScriptCodec

from ._report import Report, Target

Gen = np.random.Generator
Part = tuple[int, float, Callable[[Gen, int], dict[str, Any]]]  # fPort, share of the batch, field values

#: Record-structured codecs (variable records or many report types); all others have fixed layouts.
RECORD_STRUCTURED = {
    "milesight-iot/em310-udl",
    "milesight-iot/vs133",
    "elsys/ers",
    "opensource/esp32-paxcounter",
    "netvox/r718x",
    "netvox/r719a",
    "pepperl-fuchs/wilsen-sonic-level",
}
TARGETS = {"fixed": (5e6, 30.0), "record": (1e6, 10.0)}  # payloads/s and times the per-message decoder
BASELINE_ROWS = 50_000
SCRIPTS = Path(__file__).parent / "scripts"
#: script codec -> (payload maker, batch-mode target in payloads/s); batch mode must also be >= 2x per message
SCRIPT_TARGETS = {"simple": 250_000.0, "multi-field": 60_000.0}
SCRIPT_RATIO = 2.0
SCRIPT_BASELINE_ROWS = 20_000


def ints(rng: Gen, lo: int, hi: int, n: int) -> np.ndarray:
    return rng.integers(lo, hi + 1, n)


def pick(rng: Gen, choices: list[Any], n: int) -> np.ndarray:
    return np.array(choices, dtype=object)[rng.integers(0, len(choices), n)]


def volts(rng: Gen, n: int) -> np.ndarray:
    return ints(rng, 30, 36, n) / 10


def netvox(device: str, status: Callable[[Gen, int], dict[str, Any]]) -> list[Part]:
    def config(rng: Gen, n: int) -> dict[str, Any]:
        return {
            "Device": device,
            "Cmd": pick(rng, ["ConfigReportRsp", "ReadConfigReportRsp"], n),
            "MinTime": 900,
            "MaxTime": 3600,
            "BatteryChange": 0.1,
            "DistanceChange": 100,
            "TempChange": 0.5,
        }

    return [
        (6, 0.90, lambda rng, n: {"Device": device, "Volt": volts(rng, n), **status(rng, n)}),
        (6, 0.02, lambda rng, n: {"Device": device, "SWver": 1.0, "HWver": 1, "Datecode": "20200811"}),
        (7, 0.08, config),
    ]


def lht65(mode: dict[str, Any], probe: bool = False, timestamp: bool = False) -> Callable[[Gen, int], dict]:
    def make(rng: Gen, n: int) -> dict[str, Any]:
        cols: dict[str, Any] = {
            "TempC_SHT": ints(rng, -1500, 3500, n) / 100,
            "Hum_SHT": ints(rng, 100, 1000, n) / 10,
        }
        if not timestamp:
            cols["BatV"] = ints(rng, 2600, 3300, n) / 1000
        if probe or timestamp:
            cols["TempC_DS"] = ints(rng, -1500, 3500, n) / 100
        if timestamp:
            cols["Systimestamp"] = ints(rng, 1_700_000_000, 1_800_000_000, n)
        return {**cols, **mode}

    return make


MIXES: dict[str, list[Part]] = {
    "netvox/r718x": netvox(
        "R718X",
        lambda rng, n: {
            "Status": "ON",
            "Distance": ints(rng, 200, 1500, n),
            "Temp": ints(rng, -100, 350, n) / 10,
            "FillLevel": ints(rng, 0, 100, n),
            "AngleOfInclination": ints(rng, 0, 5, n),
        },
    ),
    "netvox/r719a": netvox("R719A", lambda rng, n: {"CarOnOff": ints(rng, 0, 1, n)}),
    "nwave/nps405": [
        (
            1,
            0.75,
            lambda rng, n: {"occupied": rng.random(n) < 0.5, "previous_state_duration": ints(rng, 0, 700, n)},
        ),
        (
            2,
            0.20,
            lambda rng, n: {
                "occupied": rng.random(n) < 0.5,
                "battery_voltage": ints(rng, 100, 255, n) * 4 / 1000 + 2.5,
                "temperature": ints(rng, -20, 60, n) / 2 + 10,
            },
        ),
        (3, 0.02, lambda rng, n: {"firmware_version": "2.4.9", "reset_cause": "power_on", "occupied": False}),
        (
            10,
            0.03,
            lambda rng, n: {
                "occupied": True,
                "previous_state_duration": 5,
                "tag_id": pick(rng, ["1F345678", "ABCDE"], n),
            },
        ),
    ],
    "bosch/tps110": [
        (1, 0.75, lambda rng, n: {"occupied": rng.random(n) < 0.5}),
        (2, 0.20, lambda rng, n: {"occupied": rng.random(n) < 0.5, "temperature": ints(rng, -20, 40, n)}),
        (
            3,
            0.03,
            lambda rng, n: {
                "debugCodes": pick(rng, [[], [804, 885]], n),
                "firmwareVersion": "0.29.2",
                "resetCause": "power on",
                "occupied": False,
            },
        ),
        (
            6,
            0.02,
            lambda rng, n: {
                "timestamp": ints(rng, 1_700_000_000, 1_800_000_000, n),
                "debugCode": 804,
                "sequenceNumber": ints(rng, 0, 65535, n),
            },
        ),
    ],
    "dragino/lht65": [
        (2, 0.50, lht65({"Ext_sensor": "Temperature Sensor"}, probe=True)),
        (2, 0.30, lht65({"Ext_sensor": "No external sensor"})),
        (2, 0.10, lht65({"Work_mode": "DS18B20 & timestamp"}, timestamp=True)),
        (2, 0.10, lht65({"Work_mode": "Interrupt Sensor count", "Exit_count": 17})),
    ],
    "milesight-iot/em310-udl": [
        (
            85,
            0.80,
            lambda rng, n: {
                "battery": ints(rng, 50, 100, n),
                "distance": ints(rng, 200, 3000, n),
                "tilt": pick(rng, ["normal"] * 9 + ["tilt"], n),
            },
        ),
        (85, 0.20, lambda rng, n: {"distance": ints(rng, 200, 3000, n)}),
    ],
    "milesight-iot/vs133": [
        (
            85,
            0.70,
            lambda rng, n: {
                "line_1.total_in": ints(rng, 0, 10**6, n),
                "line_1.total_out": ints(rng, 0, 10**6, n),
                "line_1.period_in": ints(rng, 0, 50, n),
                "line_1.period_out": ints(rng, 0, 50, n),
            },
        ),
        (
            85,
            0.30,
            lambda rng, n: {
                "line_1.total_in": ints(rng, 0, 10**6, n),
                "line_1.total_out": ints(rng, 0, 10**6, n),
                "line_2.total_in": ints(rng, 0, 10**6, n),
                "line_2.total_out": ints(rng, 0, 10**6, n),
            },
        ),
    ],
    "elsys/ers": [
        (
            5,
            0.80,
            lambda rng, n: {
                "temperature": ints(rng, 150, 280, n) / 10,
                "humidity": ints(rng, 20, 70, n),
                "light": ints(rng, 0, 2000, n),
                "motion": ints(rng, 0, 20, n),
                "vdd": ints(rng, 3300, 3700, n),
            },
        ),
        (
            5,
            0.20,
            lambda rng, n: {
                "temperature": ints(rng, 150, 280, n) / 10,
                "humidity": ints(rng, 20, 70, n),
                "vdd": ints(rng, 3300, 3700, n),
            },
        ),
    ],
    "opensource/esp32-paxcounter": [
        (1, 0.70, lambda rng, n: {"wifi": ints(rng, 0, 300, n), "ble": ints(rng, 0, 300, n)}),
        (1, 0.10, lambda rng, n: {"wifi": ints(rng, 0, 300, n)}),
        (
            2,
            0.10,
            lambda rng, n: {
                "voltage": ints(rng, 3500, 4200, n),
                "uptime": ints(rng, 0, 10**7, n),
                "cputemp": ints(rng, 30, 60, n),
                "memory": ints(rng, 10**5, 2 * 10**5, n),
                "reset0": 1,
                "restarts": ints(rng, 0, 100, n),
            },
        ),
        (
            7,
            0.05,
            lambda rng, n: {
                "temperature": ints(rng, 1500, 2800, n) / 100,
                "pressure": ints(rng, 9800, 10300, n) / 10,
                "humidity": ints(rng, 2000, 7000, n) / 100,
                "air": ints(rng, 0, 50000, n) / 100,
            },
        ),
        (8, 0.05, lambda rng, n: {"voltage": ints(rng, 3500, 4200, n)}),
    ],
    "pepperl-fuchs/wilsen-sonic-level": [
        (
            1,
            0.80,
            lambda rng, n: {
                "proxx": ints(rng, 20, 300, n),
                "fillinglvl": ints(rng, 0, 100, n),
                "temp": ints(rng, -100, 350, n) / 10,
                "battery_vol": ints(rng, 30, 36, n) / 10,
            },
        ),
        (
            1,
            0.20,
            lambda rng, n: {
                "proxx_mm": ints(rng, 200, 3000, n),
                "amplitude": ints(rng, 0, 255, n),
                "temp": ints(rng, -100, 350, n) / 10,
                "battery_vol": ints(rng, 30, 36, n) / 10,
                "lora_count": ints(rng, 0, 65535, n),
            },
        ),
    ],
}


def build_batch(codec_id: str, n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n payloads of the codec's mix, encoded by the codec, shuffled: ``(f_port, buf, offsets)``."""
    codec = all_codecs()[codec_id]
    rng = np.random.default_rng(seed)
    parts = MIXES[codec_id]
    counts = [int(round(share * n)) for _, share, _ in parts]
    counts[0] += n - sum(counts)
    ports, bufs, lens = [], [], []
    for (port, _, make), k in zip(parts, counts, strict=True):
        values = {
            name: v if isinstance(v, np.ndarray) else np.full(k, v, dtype=object if isinstance(v, str) else None)
            for name, v in make(rng, k).items()
        }
        buf, offsets = codec.encode(port, values)
        ports.append(np.full(k, port, dtype=np.int64))
        bufs.append(buf)
        lens.append(np.diff(offsets))
    all_ports = np.concatenate(ports)
    length = np.concatenate(lens)
    flat = np.concatenate(bufs)
    starts = np.concatenate([[0], np.cumsum(length)[:-1]])
    order = rng.permutation(n)
    new_len = length[order]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(new_len, out=offsets[1:])
    gather = np.repeat(starts[order] - offsets[:-1], new_len) + np.arange(offsets[-1])
    return all_ports[order], flat[gather], offsets


def elapsed(fn: Callable[[], object]) -> float:
    """Seconds for one call, with the garbage collector paused as ``timeit`` does (for both decoders)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def bench(codec_id: str, n: int, runs: int) -> dict[str, Any]:
    codec = all_codecs()[codec_id]
    port, buf, offsets = build_batch(codec_id, n)
    decoded = codec.decode(port, buf, offsets)  # warm-up, and a check that the mix is valid
    ok_share = float(decoded.ok.mean()) if n else 1.0
    m = min(n, BASELINE_ROWS)
    messages = [(int(port[i]), bytes(buf[offsets[i] : offsets[i + 1]])) for i in range(m)]

    def per_message() -> None:
        for p, payload in messages:
            codec.decode_row(p, payload)

    def all_columns() -> None:
        result = codec.decode(port, buf, offsets)
        for col in result.columns.values():
            _ = col.values

    # Alternate them so that all see the same load on a shared machine.
    vec_times, row_times, full_times = [], [], []
    for _ in range(runs):
        vec_times.append(elapsed(lambda: codec.decode(port, buf, offsets)))
        row_times.append(elapsed(per_message) * (n / m))
        full_times.append(elapsed(all_columns))
    vec, row, full = (statistics.median(t) for t in (vec_times, row_times, full_times))
    kind = "record" if codec_id in RECORD_STRUCTURED else "fixed"
    return {"codec": codec_id, "kind": kind, "vec": n / vec, "row": n / row, "full": n / full, "ok": ok_share}


def script_batch(name: str, n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n payloads of a bench script's layout: ``(f_port, buf, offsets)``."""
    rng = np.random.default_rng(seed)
    if name == "simple":
        frames = rng.integers(0, 256, (n, 2), dtype=np.uint8)
        return np.ones(n, dtype=np.int64), frames.reshape(-1), np.arange(n + 1, dtype=np.int64) * 2
    frames = rng.integers(0, 256, (n, 12), dtype=np.uint8)
    frames[:, 5] &= 7
    return np.full(n, 2, dtype=np.int64), frames.reshape(-1), np.arange(n + 1, dtype=np.int64) * 12


def bench_script(name: str, n: int, runs: int) -> dict[str, Any]:
    codec = ScriptCodec(f"bench/{name}", (SCRIPTS / f"{name}.js").read_text())
    port, buf, offsets = script_batch(name, n)
    decoded = codec.decode(port, buf, offsets)  # warm-up, and a check that the batch is valid
    m = min(n, SCRIPT_BASELINE_ROWS)
    messages = [(int(port[i]), bytes(buf[offsets[i] : offsets[i + 1]])) for i in range(m)]

    def per_message() -> None:
        for p, payload in messages:
            codec.decode_row(p, payload)

    batch_times, row_times, batch_cpu, row_cpu = [], [], [], []
    for _ in range(runs):
        cpu = time.process_time()
        batch_times.append(elapsed(lambda: codec.decode(port, buf, offsets)))
        batch_cpu.append(time.process_time() - cpu)
        cpu = time.process_time()
        row_times.append(elapsed(per_message) * (n / m))
        row_cpu.append((time.process_time() - cpu) * (n / m))
    batch, row = statistics.median(batch_times), statistics.median(row_times)
    return {
        "codec": name,
        "batch": n / batch,
        "row": n / row,
        "batch_cpu": n / statistics.median(batch_cpu),
        "row_cpu": n / statistics.median(row_cpu),
        "ok": float(decoded.ok.mean()),
    }


def run_scripts(n: int, runs: int, report: Report | None = None) -> int:
    print(
        f"script codecs (QuickJS): {n:,} payloads, median of {runs} runs; per-message baseline: one engine call per "
        f"payload over {min(n, SCRIPT_BASELINE_ROWS):,} payloads, scaled"
    )
    print(
        f"{'script':34} {'batch mode':>14} {'per-message':>14} {'ratio':>7}  {'per CPU second: batch':>22} "
        f"{'per-message':>12}  target (wall clock)"
    )
    failures = 0
    for name, target in SCRIPT_TARGETS.items():
        r = bench_script(name, n, runs)
        ratio = r["batch"] / r["row"]
        met = r["batch"] >= target and ratio >= SCRIPT_RATIO and r["ok"] == 1.0
        failures += not met
        if report is not None:
            report.targets.append(Target(f"script {name} >= {target / 1e3:g} k/s and {SCRIPT_RATIO:g}x", met))
            report.figure(f"script {name} batch", r["batch"] / 1e3, "k decodes/s")
            report.figure(f"script {name} batch per CPU second", r["batch_cpu"] / 1e3, "k decodes/s")
        print(
            f"{name:34} {r['batch'] / 1e3:10.1f} k/s {r['row'] / 1e3:10.1f} k/s {ratio:6.1f}x  "
            f"{r['batch_cpu'] / 1e3:18.1f} k/s {r['row_cpu'] / 1e3:8.1f} k/s  "
            f">= {target / 1e3:g} k/s and {SCRIPT_RATIO:g}x: {'met' if met else 'MISSED'}"
        )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codecs", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="payloads per batch")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is reported)")
    parser.add_argument("--codec", action="append", help="only this codec (repeatable)")
    parser.add_argument("--script-n", type=int, default=200_000, help="payloads per script codec batch")
    parser.add_argument("--scripts-only", action="store_true", help="only the script codecs")
    args = parser.parse_args(argv)
    if args.scripts_only:
        scripts = Report("codecs")
        run_scripts(args.script_n, args.runs, scripts)
        scripts.write()
        return 0
    ids = args.codec or sorted(MIXES)
    print(
        f"codec throughput: {args.n:,} mixed real-layout payloads per batch, median of {args.runs} runs, "
        f"{os.cpu_count()} CPUs; per-message baseline: decode_row over "
        f"{min(args.n, BASELINE_ROWS):,} payloads, scaled"
    )
    print(f"{'codec':34} {'kind':6} {'vectorised':>14} {'per-message':>14} {'ratio':>7}  {'all columns':>13}  target")
    report = Report("codecs")
    results = []
    for codec_id in ids:
        r = bench(codec_id, args.n, args.runs)
        min_rate, min_ratio = TARGETS[r["kind"]]
        ratio = r["vec"] / r["row"]
        met = r["vec"] >= min_rate and ratio >= min_ratio and r["ok"] == 1.0
        results.append((r["vec"], ratio))
        note = "" if r["ok"] == 1.0 else f"  ({1 - r['ok']:.1%} of the mix failed to decode)"
        print(
            f"{codec_id:34} {r['kind']:6} {r['vec'] / 1e6:9.2f} M/s {r['row'] / 1e6:9.3f} M/s {ratio:6.0f}x  "
            f"{r['full'] / 1e6:9.2f} M/s  "
            f">= {min_rate / 1e6:g} M/s and {min_ratio:g}x: {'met' if met else 'MISSED'}{note}"
        )
        report.targets.append(Target(f"{codec_id} >= {min_rate / 1e6:g} M/s and {min_ratio:g}x", met))
    report.figure("codecs", len(results))
    report.figure("slowest", min(v for v, _ in results) / 1e6, "M payloads/s")
    report.figure("lowest ratio", min(x for _, x in results), "x")
    if not args.codec:
        run_scripts(args.script_n, args.runs, report)
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
