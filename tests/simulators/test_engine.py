"""The simulation's messages: reproducible byte for byte, readable by the hub's envelope parser, and decoded by the
hub's codecs to exactly the quantities of the ground truth (a week of the small town with every fault kind)."""

from __future__ import annotations

import collections
from datetime import datetime, timedelta

import numpy as np
import pytest

from stadtpuls.cli import main as cli
from stadtpuls.ingest.codecs import all_codecs, get
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators import read_messages


def _run(tmp_path, name: str, seed: int) -> tuple[bytes, bytes]:
    out, truth = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.truth.jsonl"
    code = cli(
        [
            "simulate",
            "--city",
            "small",
            "--seed",
            str(seed),
            "--start",
            "2025-03-03",
            "--duration",
            "1d",
            "--faults",
            "default",
            "--format",
            "mixed",
            "--out",
            str(out),
            "--truth",
            str(truth),
            "--no-progress",
        ]
    )
    assert code == 0
    return out.read_bytes(), truth.read_bytes()


def test_same_seed_gives_byte_identical_message_and_truth_files(tmp_path):
    first = _run(tmp_path, "a", 5)
    second = _run(tmp_path, "b", 5)
    other = _run(tmp_path, "c", 6)
    assert first[0] == second[0] and first[1] == second[1]
    assert first[0] != other[0]
    assert len(list(read_messages(tmp_path / "a.jsonl"))) > 1000


def test_every_uplink_reads_back_through_the_hub_envelope_parser(small_week):
    msgs = small_week.messages
    batch = parse_batch([m.topic for m in msgs], [m.payload for m in msgs], hub_time=0)
    s = small_week.summary
    assert len(batch.rejects) == s["faults"]["malformed"]
    assert all(r.stage == "envelope" and r.reason.startswith("not JSON") for r in batch.rejects)
    assert len(batch.joins) == s["joins"]
    assert len(batch) == s["uplinks"] + s["faults"]["duplicates"]
    assert len(batch.ignored) == 0
    by_dedup = {line["dedup"]: line for line in small_week.lines if line.get("dedup")}
    seen = collections.Counter()
    for i in range(len(batch)):
        row = batch.row(i)
        line = by_dedup[str(batch.dedup_uuid(i))]
        seen[line["dedup"]] += 1
        t = datetime.fromisoformat(line["t"]) + timedelta(seconds=line.get("skew_s", 0.0))
        assert row["time"] == t.replace(tzinfo=None)
        assert row["dev_eui"] == line["dev_eui"]
        assert row["f_cnt"] == line["f_cnt"] and row["f_port"] == line["f_port"]
        assert row["payload"].hex() == line["bytes_hex"]
        assert row["lns"] == ("tts" if line["lns"] == "tts" else "chirpstack-v4")
        assert 1 <= row["gateways"] <= len(small_week.sim.city.gateways) and -140 <= row["rssi"] < -20
    for line in small_week.lines:
        expected = 0 if {"gaps", "malformed"} & set(line["faults"]) else 2 if "duplicates" in line["faults"] else 1
        assert seen[line.get("dedup")] == expected, line


def _params(city, site_ids: list[str]) -> dict[str, np.ndarray]:
    depth = [getattr(city.site_by_id.get(s), "depth_mm", None) for s in site_ids]
    full = [getattr(city.site_by_id.get(s), "full_mm", None) for s in site_ids]
    return {
        "depth_mm": np.array([np.nan if d is None else d for d in depth], dtype=np.float64),
        "full_mm": np.array([np.nan if f is None else f for f in full], dtype=np.float64),
    }


def test_every_uplink_decodes_to_the_quantities_of_its_ground_truth(small_week):
    city = small_week.sim.city
    lines = [line for line in small_week.lines if line["kind"] not in ("malformed",) and "gaps" not in line["faults"]]
    by_codec: dict[str, list[dict]] = collections.defaultdict(list)
    for line in lines:
        by_codec[line["codec"]].append(line)
    assert set(by_codec) == set(all_codecs())  # all ten reference models are in the fleet
    checked = 0
    for codec_id, group in by_codec.items():
        codec = get(codec_id)
        payloads = [bytes.fromhex(line["bytes_hex"]) for line in group]
        offsets = np.zeros(len(group) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in payloads], out=offsets[1:])
        buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
        ports = np.array([line["f_port"] for line in group])
        decoded = codec.decode(ports, buf, offsets)
        domain = codec.domain(decoded, _params(city, [line["site_id"] or "" for line in group]))
        for j, line in enumerate(group):
            if "garbage" in line["faults"]:
                assert not decoded.ok[j], line
                continue
            assert decoded.ok[j], line
            if line["kind"] == "unknown":
                assert line["dev_eui"] not in city.device_by_eui
                continue
            got = {q: col.values[j] for q, col in domain.items() if col.present[j]}
            assert set(got) == set(line["quantities"]), line
            for q, value in line["quantities"].items():
                if isinstance(value, bool):
                    assert bool(got[q]) is value, (q, line)
                else:
                    assert got[q] == pytest.approx(value, rel=1e-12, abs=1e-12), (q, line)
            checked += 1
    assert checked > 20000


def test_summary_counts_every_measurement_and_message(small_week):
    s = small_week.summary
    kinds = collections.Counter(line["kind"] for line in small_week.lines)
    assert s["published"] == len(small_week.messages)
    assert s["measurements"] == sum(v for k, v in kinds.items() if k not in ("unknown", "malformed"))
    assert kinds["unknown"] == s["faults"]["unknown"] and kinds["malformed"] == s["faults"]["malformed"]
    faults = collections.Counter(f for line in small_week.lines for f in line["faults"])
    assert dict(faults) == {k: v for k, v in s["faults"].items() if v}
    assert all(v > 0 for v in s["faults"].values())  # a week of the small town exercises every kind
    assert s["published"] == s["uplinks"] + s["joins"] + s["faults"]["duplicates"] + s["faults"]["malformed"]
    assert {"bin", "space", "vehicle", "station"} <= set(kinds)
