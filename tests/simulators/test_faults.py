"""Fault injection: the --faults syntax, and what each kind does to the published stream of a simulated week."""

from __future__ import annotations

import collections

import orjson
import pytest

from stadtpuls.ingest.codecs import all_codecs, get
from stadtpuls.ingest.envelopes import parse_batch
from stadtpuls.simulators.faults import DEFAULT_RATES, FaultConfig, FaultInjector, FaultSpecError


def test_fault_spec_parses_default_overrides_and_none():
    assert FaultConfig.parse("none").rates == ()
    assert not FaultConfig.parse(None).enabled
    cfg = FaultConfig.parse("default,gaps=0.2")
    assert cfg.rate("gaps") == 0.2 and cfg.rate("duplicates") == DEFAULT_RATES["duplicates"]
    assert FaultConfig.parse("skew=0.5").text() == "skew=0.5"


@pytest.mark.parametrize("text", ["dupes=0.1", "gaps", "gaps=abc", "gaps=1.5", "gaps=0.6,garbage=0.6"])
def test_fault_spec_rejects_bad_values_with_the_offending_text(text):
    with pytest.raises(FaultSpecError) as e:
        FaultConfig.parse(text)
    assert e.value.text


@pytest.mark.parametrize("codec_id", sorted(all_codecs()))
def test_garbage_frames_are_rejected_by_the_device_codec(codec_id):
    inj = FaultInjector(FaultConfig(), seed=3, start_us=0)
    codec = get(codec_id)
    sample = {
        "milesight-iot/em310-udl": "01755a0382b004040000",
        "netvox/r718x": "013401240104b0007b1400",
        "pepperl-fuchs/wilsen-sonic-level": "040b0204b0030b06140602014144cccd03510124",
        "nwave/nps405": "3d",
        "bosch/tps110": "01",
        "netvox/r719a": "0159012401000000000000",
        "milesight-iot/vs133": "03d26400000004d25a00000005cc03000100",
        "opensource/esp32-paxcounter": "0a000300e0620f0350c0bc000778007100",
        "elsys/ers": "0100d5022804012c0503070e10",
        "dragino/lht65": "cbb804d2022b0000000000",
    }[codec_id]
    for _ in range(20):
        port, data = inj.garbage(codec_id, codec.f_ports[0], bytes.fromhex(sample))
        assert data and "errors" in codec.decode_row(port, data)


def test_malformed_messages_are_never_json():
    inj = FaultInjector(FaultConfig(), seed=4, start_us=0)
    body = orjson.dumps({"deviceInfo": {"devEui": "0101010101010101"}, "data": "qg==", "fCnt": 3})
    for _ in range(200):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(inj.malformed(body))


def test_gapped_uplinks_are_not_published_and_leave_a_hole_in_the_frame_counters(small_week):
    msgs = small_week.messages
    batch = parse_batch([m.topic for m in msgs], [m.payload for m in msgs], hub_time=0)
    keys = {str(batch.dedup_uuid(i)) for i in range(len(batch))}
    sent = collections.defaultdict(set)
    for i in range(len(batch)):
        sent[batch.dev_eui[i].decode()].add(int(batch.f_cnt[i]))
    gaps = [line for line in small_week.lines if "gaps" in line["faults"]]
    assert gaps
    for line in gaps:
        assert line["dedup"] not in keys
        assert {line["f_cnt"] - 1, line["f_cnt"] + 1} & sent[line["dev_eui"]]  # neighbours of the hole arrived


def test_resets_rejoin_first_and_restart_the_frame_counter(small_week):
    resets = [line for line in small_week.lines if "resets" in line["faults"]]
    assert resets
    for line in resets:
        assert line["f_cnt"] == 0
    joins = [m for m in small_week.messages if m.topic.endswith("/join")]
    devices = {d.dev_eui for d in small_week.sim.city.devices}
    assert len(joins) == len(devices) + len(resets)  # one join per device at its first uplink, one per reset


def test_duplicates_are_byte_identical_copies_and_reordered_uplinks_follow_the_next_one(small_week):
    counts = collections.Counter(m.payload for m in small_week.messages)
    dup_lines = [line for line in small_week.lines if "duplicates" in line["faults"]]
    assert sum(1 for c in counts.values() if c == 2) == len(dup_lines)
    assert max(counts.values()) == 2
    order = {line["dedup"]: i for i, line in enumerate(small_week.lines)}
    reordered = [line for line in small_week.lines if "reorder" in line["faults"]]
    assert reordered
    late = 0
    msgs_by_dedup = {}
    for k, m in enumerate(small_week.messages):
        if b"deduplicationId" in m.payload[:20]:
            try:
                msgs_by_dedup.setdefault(orjson.loads(m.payload)["deduplicationId"], k)
            except orjson.JSONDecodeError:
                pass
    for line in reordered:
        if line["lns"] != "chirpstack" or line["dedup"] not in msgs_by_dedup:
            continue
        nxt = [
            x
            for x in small_week.lines[order[line["dedup"]] + 1 :]
            if x["dev_eui"] == line["dev_eui"] and x["dedup"] in msgs_by_dedup and "reorder" not in x["faults"]
        ]
        if nxt:
            assert msgs_by_dedup[nxt[0]["dedup"]] < msgs_by_dedup[line["dedup"]]
            late += 1
    assert late > 0


def test_skewed_uplinks_carry_a_shifted_server_time(small_week):
    skewed = [line for line in small_week.lines if "skew" in line["faults"]]
    assert skewed
    assert all(1.0 <= abs(line["skew_s"]) <= 90.0 for line in skewed)
    assert not any("skew_s" in line for line in small_week.lines if "skew" not in line["faults"])


def test_device_faults_are_named_in_the_spec_and_default_to_the_natural_rates():
    cfg = FaultConfig.parse("silent=0.01,drain=0.5")
    assert cfg.device_rate("silent", 0.0002) == 0.01 and cfg.device_rate("drain", 0.02) == 0.5
    assert cfg.device_rate("echoes", 0.003) == 0.003
    assert not cfg.enabled  # the messages keep their form
    assert FaultConfig.parse("default").device_rate("silent", 0.0002) == 0.0002


def test_the_device_fault_plan_says_who_was_silent_drained_and_rejoined():
    from stadtpuls.simulators import SimConfig, Simulation, TruthWriter
    from stadtpuls.simulators.timebase import DAY_US, parse_start

    truth = TruthWriter(keep=True)
    start = parse_start("2025-03-03")
    config = SimConfig(
        city="small",
        seed=4,
        start_us=start,
        duration_us=7 * DAY_US,
        faults=FaultConfig.parse("resets=0.01,silent=0.003,drain=0.5"),
        models=("waste",),
    )
    sim = Simulation(config, truth)
    list(sim.messages())
    plan = sim.device_faults()
    lines = collections.defaultdict(list)
    for line in truth.lines[:-1]:
        lines[line["dev_eui"]].append((parse_start(line["t"]), line["quantities"]))
    silent = [f for f in plan if f.kind == "silent"]
    drained = [f for f in plan if f.kind == "drain"]
    resets = [f for f in plan if f.kind == "resets"]
    assert silent and drained and resets
    for f in silent:  # nothing sent during an outage
        assert not [t for t, _ in lines[f.dev_eui] if f.start_us <= t < f.end_us], f
    assert 4 <= len(drained) <= 20  # half of the 24 bins, give or take
    for f in drained:  # what the bins reported is the plan's voltage (0.1 V steps, or percent of 3.0..3.65 V)
        assert f.volts is not None and f.per_day is not None and f.end_us is not None
        for t, q in lines[f.dev_eui]:
            v = f.volts - f.per_day * (t - start) / DAY_US
            assert t < f.end_us
            if "battery_v" in q:
                assert abs(q["battery_v"] - v) <= 0.05 + 1e-9
            else:
                assert abs(q["battery_pct"] - (v - 3.0) / 0.65 * 100) <= 0.5 + 1e-9
    rejoined = sorted(ln["dev_eui"] for ln in truth.lines[:-1] if "resets" in ln["faults"])
    assert sorted(f.dev_eui for f in resets) == rejoined
    assert plan == sorted(plan, key=lambda f: (f.start_us, f.dev_eui, f.kind))
