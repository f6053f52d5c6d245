"""Envelope parsing throughput: ``parse_batch`` against a per-message baseline, on built TTS and ChirpStack uplinks.

Batches of N (default 5,000) TTS v3 uplinks, N ChirpStack v4 uplinks and the two mixed, as the builders of
``simulators.messages`` write them (500 devices, two gateways, decoded payload objects). The baseline is the
straightforward per-message way: ``json.loads``, ``datetime.fromisoformat``, ``base64.b64decode`` and one dict per
uplink. Figures are medians of several runs in this process, alternating, with the garbage collector paused during
each timed call as ``timeit`` does.

    python -m bench.envelopes [--n 5000] [--runs 7]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators.messages import chirpstack_uplink, tts_uplink

from ._report import Report

APP_UUID = "17c82e96-be03-4f38-aef3-f83d48582d97"
GATEWAYS = [("eui-0016c001f153a14c", -97.0, 6.5), ("eui-0016c001f153a14d", -110.0, -2.25)]


def build(n: int) -> tuple[list[bytes], list[bytes]]:
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    tts, cs = [], []
    for k in range(n):
        when = t0 + timedelta(seconds=k * 0.37)
        payload = bytes((k + j) % 256 for j in range(11))
        tts.append(
            orjson.dumps(
                tts_uplink(
                    device_id=f"bin-{k % 500:04d}",
                    app_id="city-waste",
                    dev_eui=f"a8404100{k % 500:08x}",
                    received_at=when,
                    f_port=2,
                    f_cnt=k,
                    payload=payload,
                    gateways=GATEWAYS,
                    decoded={"distance": 1234, "battery": 3.61},
                )
            )
        )
        cs.append(
            orjson.dumps(
                chirpstack_uplink(
                    dev_eui=f"a8404100{k % 500:08x}",
                    application_id=APP_UUID,
                    time=when,
                    f_port=2,
                    f_cnt=k,
                    payload=payload,
                    gateways=[(g[4:], r, s) for g, r, s in GATEWAYS],
                    decoded={"distance": 1234.0},
                )
            )
        )
    return tts, cs


def baseline(payloads: list[bytes]) -> list[dict[str, Any]]:
    """One message at a time, the obvious way."""
    out = []
    for raw in payloads:
        msg = json.loads(raw)
        if "end_device_ids" in msg:
            up = msg["uplink_message"]
            rx = up.get("rx_metadata") or [{}]
            best = max(rx, key=lambda m: m.get("rssi", -999))
            out.append(
                {
                    "time": datetime.fromisoformat(up["received_at"]),
                    "dev_eui": msg["end_device_ids"].get("dev_eui", "").lower(),
                    "f_cnt": up.get("f_cnt", 0),
                    "f_port": up.get("f_port", 0),
                    "payload": base64.b64decode(up.get("frm_payload", "")),
                    "rssi": best.get("rssi"),
                    "snr": best.get("snr"),
                    "gateways": len(rx),
                    "frequency": int(up["settings"]["frequency"]),
                    "decoded": up.get("decoded_payload"),
                }
            )
        else:
            rx = msg.get("rxInfo") or [{}]
            best = max(rx, key=lambda m: m.get("rssi", -999))
            out.append(
                {
                    "time": datetime.fromisoformat(msg["time"]),
                    "dev_eui": msg["deviceInfo"]["devEui"],
                    "f_cnt": msg.get("fCnt", 0),
                    "f_port": msg.get("fPort", 0),
                    "payload": base64.b64decode(msg.get("data", "")),
                    "rssi": best.get("rssi"),
                    "snr": best.get("snr"),
                    "gateways": len(rx),
                    "frequency": msg["txInfo"]["frequency"],
                    "decoded": msg.get("object"),
                }
            )
    return out


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    report = Report("envelopes")
    tts, cs = build(args.n)
    hub = datetime(2026, 3, 2, 1, tzinfo=UTC).timestamp()
    for name, payloads in (("tts", tts), ("chirpstack-v4", cs), ("mixed", tts + cs)):
        topics = ["t"] * len(payloads)
        assert len(parse_batch(topics, payloads, hub)) == len(payloads)
        ours, base = [], []
        for _ in range(args.runs):
            ours.append(timed(lambda p=payloads, t=topics: parse_batch(t, p, hub)))  # type: ignore[misc]
            base.append(timed(lambda p=payloads: baseline(p)))  # type: ignore[misc]
        n = len(payloads)
        rate, base_rate = n / statistics.median(ours), n / statistics.median(base)
        size = sum(map(len, payloads)) / n
        print(f"{name}: {n} messages of {size:.0f} bytes")
        print(f"  parse_batch: {rate:,.0f} uplinks/s ({1e6 / rate:.1f} us/uplink)")
        print(f"  baseline:    {base_rate:,.0f} uplinks/s ({1e6 / base_rate:.1f} us/uplink)")
        print(f"  ratio:       {rate / base_rate:.2f}x")
        if name == "mixed":
            report.figure("mixed", rate, "uplinks/s")
            report.figure("per uplink", 1e6 / rate, "µs")
            report.figure("ratio", rate / base_rate, "x")
    report.write()


if __name__ == "__main__":
    main()
