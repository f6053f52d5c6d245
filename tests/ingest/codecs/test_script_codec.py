"""Script codecs behind the codec interface: the decodeUplink/Decoder contract, Buffer, the sandbox and limits."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from stadtpuls.ingest.codecs.script import (
    MAX_LIMIT_FAILURES,
    Limits,
    ReadingsMap,
    ReadingsMapError,
    ScriptCodec,
    ScriptDecoded,
    ScriptLoadError,
)
from stadtpuls.ingest.codecs.script.examples import ExamplesError, diff, load_examples, run_examples

SCRIPTS = Path(__file__).resolve().parents[2] / "data" / "scripts"


def script(name: str, **kwargs: object) -> ScriptCodec:
    return ScriptCodec(f"test/{name}", (SCRIPTS / f"{name}.js").read_text(), **kwargs)  # type: ignore[arg-type]


def batch(*payloads: bytes) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payloads], out=offsets[1:])
    return np.frombuffer(b"".join(payloads), dtype=np.uint8), offsets


def decode(codec: ScriptCodec, ports: list[int], *payloads: bytes, at: str | None = None) -> ScriptDecoded:
    buf, offsets = batch(*payloads)
    recv = None if at is None else np.full(len(payloads), np.datetime64(at, "us"))
    return codec.decode_uplinks(np.array(ports, dtype=np.int64), buf, offsets, recv)


def test_decode_uplink_with_buffer_returns_data_warnings_and_errors_per_row() -> None:
    codec = script("acme-bin")
    d = decode(codec, [1, 1, 2, 1], bytes.fromhex("02bc0e1000d700"), bytes.fromhex("00c80dacffce01"), b"\x01", b"\x01")
    assert d.ok.tolist() == [True, True, False, False]
    assert d.data[0] == {"distance_mm": 700, "battery_mv": 3600, "temperature": 21.5, "tilted": False}
    assert d.data[1]["temperature"] == -5 and d.data[1]["tilted"] is True
    assert d.warnings == [None, ["sensor tilted: the distance may be wrong"], None, None]
    assert d.error.tolist() == [None, None, "unknown fPort 2", "expected 7 bytes, got 1"]
    assert d.objects()[0] == d.data[0] and d.objects()[2] is None
    assert d.columns["distance_mm"].values.tolist() == [700, 200, None, None]
    assert d.columns["distance_mm"].present.tolist() == [True, True, False, False]
    assert d.columns.get("latitude") is None and "latitude" not in d.columns and "tilted" in d.columns
    assert list(d.columns) == ["distance_mm", "tilted", "battery_mv", "temperature"]  # built when iterated
    assert d.kept_objects() == (d.data, d.warnings, 0)


def test_recv_time_is_the_uplinks_receive_time() -> None:
    d = decode(script("acme-parking"), [2], bytes([1, 150]), at="2026-05-01T08:00:00")
    assert d.data[0] == {"state": "occupied", "battery": {"volts": 3.5}, "received": "2026-05-01T08:00:00.000Z"}


def test_input_shows_scripts_bytes_fport_and_variables_and_a_receive_time_on_demand() -> None:
    source = """
    function decodeUplink(input) {
      var names = [];
      for (var k in input) names.push(k);
      return { data: { keys: Object.keys(input), names: names, json: JSON.stringify(input),
                       time: input.recvTime.toISOString(), fresh: input.recvTime !== input.recvTime } };
    }"""
    d = decode(ScriptCodec("test/input", source), [3], bytes([7, 8]), at="2026-05-01T08:00:00.25")
    assert d.data[0] == {
        "keys": ["bytes", "fPort", "variables"],
        "names": ["bytes", "fPort", "variables"],
        "json": '{"bytes":[7,8],"fPort":3,"variables":{}}',
        "time": "2026-05-01T08:00:00.250Z",
        "fresh": True,  # a new Date each time: a script that changes one does not change the next
    }


def test_older_decoder_entry_point_gets_bytes_and_port() -> None:
    d = decode(script("acme-counter"), [3, 4], bytes([5, 0, 2, 1]), bytes([0, 0, 0, 0]))
    assert d.data == [{"counts": {"in": 5, "out": 258}, "port": 3}, {"counts": {"in": 0, "out": 0}, "port": 4}]
    assert d.ok.all()


def test_buffer_shim_reads_like_node() -> None:
    source = """
    function decodeUplink(input) {
      var b = Buffer.from(input.bytes);
      var h = Buffer.from("ff7f", "hex");
      return {data: {
        u8: b.readUInt8(0), i8: b.readInt8(0), u16le: b.readUInt16LE(0), i16be: b.readInt16BE(0),
        u32be: b.readUInt32BE(0), i32le: b.readInt32LE(0), u24be: b.readUIntBE(0, 3), i24le: b.readIntLE(0, 3),
        f32be: b.readFloatBE(0), alias: b.readUint16BE(1), hex: b.toString("hex"), slice: b.slice(1, 3).toString("hex"),
        b64: Buffer.from(b.toString("base64"), "base64").toString("hex"), fromHex: h.readInt16LE(0),
        isBuffer: Buffer.isBuffer(b), concat: Buffer.concat([h, b.subarray(0, 1)]).toString("hex"),
        outOfRange: (function () { try { b.readUInt32BE(2); return "no"; } catch (e) { return e.name; } })()
      }};
    }
    """
    d = ScriptCodec("test/buffer", source).decode(np.array([1]), *batch(bytes.fromhex("c0490fdb")))
    assert d.ok.all(), d.error
    assert d.data[0] == {
        "u8": 0xC0,
        "i8": 0xC0 - 256,
        "u16le": 0x49C0,
        "i16be": 0xC049 - 0x10000,
        "u32be": 0xC0490FDB,
        "i32le": 0xDB0F49C0 - (1 << 32),
        "u24be": 0xC0490F,
        "i24le": 0x0F49C0,
        "f32be": pytest.approx(-3.1415927, rel=1e-7),
        "alias": 0x490F,
        "hex": "c0490fdb",
        "slice": "490f",
        "b64": "c0490fdb",
        "fromHex": 0x7FFF,
        "isBuffer": True,
        "concat": "ff7fc0",
        "outOfRange": "RangeError",
    }


def test_buffer_reads_refuse_offsets_outside_the_bytes_negative_or_not_whole() -> None:
    source = """
    function decodeUplink(input) {
      var b = Buffer.from(input.bytes), out = {};
      var cases = [["readUInt8", 3], ["readUInt8", 4], ["readUInt8", -1], ["readUInt8", 0.5], ["readUInt8", undefined],
                   ["readUInt16BE", 2], ["readUInt16BE", 3], ["readUInt16LE", -1], ["readUInt16LE", 1.5],
                   ["readInt32BE", 0], ["readInt32BE", 1], ["readInt32LE", 0.25], ["readUInt32LE", 0], ["readInt8", 9]];
      cases.forEach(function (c) {
        try { out[c[0] + "(" + c[1] + ")"] = b[c[0]](c[1]); } catch (e) { out[c[0] + "(" + c[1] + ")"] = e.name; }
      });
      return { data: out };
    }"""
    d = ScriptCodec("test/ranges", source).decode(np.array([1]), *batch(bytes.fromhex("fffe0102")))
    assert d.data[0] == {
        "readUInt8(3)": 2,
        "readUInt8(4)": "RangeError",
        "readUInt8(-1)": "RangeError",
        "readUInt8(0.5)": "RangeError",
        "readUInt8(undefined)": 0xFF,
        "readUInt16BE(2)": 0x0102,
        "readUInt16BE(3)": "RangeError",
        "readUInt16LE(-1)": "RangeError",
        "readUInt16LE(1.5)": "RangeError",
        "readInt32BE(0)": 0xFFFE0102 - (1 << 32),
        "readInt32BE(1)": "RangeError",
        "readInt32LE(0.25)": "RangeError",
        "readUInt32LE(0)": 0x0201FEFF,
        "readInt8(9)": "RangeError",
    }


def test_sandbox_offers_no_files_network_processes_or_timers() -> None:
    d = decode(script("misbehaving"), [1], bytes([5]))
    assert d.data[0] == dict.fromkeys(
        [
            "require",
            "process",
            "std",
            "os",
            "fetch",
            "XMLHttpRequest",
            "setTimeout",
            "setInterval",
            "performance",
            "queueMicrotask",
        ],
        "undefined",
    )


def test_throwing_erring_and_junk_cost_only_their_own_payloads() -> None:
    codec = script("misbehaving")
    firsts = [0, 1, 3, 6, 7, 8, 9, 10, 42]
    d = decode(codec, [1] * len(firsts), *(bytes([b, 0]) for b in firsts))
    assert d.ok.tolist() == [True, False, False, False, False, False, False, False, True]
    assert d.data[0] == {"value": 0} and d.data[8] == {"value": 42}
    errors = d.error.tolist()
    assert errors[1] == "cannot decode 2 bytes"
    assert errors[2].startswith("TypeError") and "BigInt" in errors[2]
    assert errors[3] == "decodeUplink returned no object"
    assert errors[4] == "battery compartment open; no reading"
    assert errors[5] == "plain text thrown"
    assert errors[6].startswith("TypeError") and "circular" in errors[6]
    assert errors[7] == "decoder data is not an object"


def test_endless_loop_costs_only_its_payload_and_the_engine_recovers() -> None:
    codec = script("misbehaving", limits=Limits(time_s=0.05))
    start = time.process_time()
    d = decode(codec, [1] * 5, bytes([20]), bytes([2]), bytes([21]), bytes([22]), bytes([2]))
    assert d.ok.tolist() == [True, False, True, True, False]
    assert [x["value"] for x in (d.data[0], d.data[2], d.data[3])] == [20, 21, 22]
    assert d.error[1] == "time limit exceeded (0.05 s CPU)" and d.error[4] == d.error[1]
    # each looping payload costs its chunk's call and its own retry: about two time limits
    assert time.process_time() - start < 2 * 2 * 0.05 + 1.0
    again = decode(codec, [1], bytes([23]))
    assert again.ok.all() and again.data == [{"value": 23}]


def test_after_a_few_endless_loops_the_rest_of_the_batch_is_not_run() -> None:
    codec = script("misbehaving", limits=Limits(time_s=0.02))
    payloads = [bytes([2])] * (MAX_LIMIT_FAILURES + 5)
    d = decode(codec, [1] * len(payloads), *payloads)
    assert not d.ok.any()
    assert d.error[0] == "time limit exceeded (0.02 s CPU)"
    assert d.error[-1].startswith(f"not decoded: the script ran out of its limits on {MAX_LIMIT_FAILURES} payloads")


def test_memory_limit_costs_only_its_payload() -> None:
    codec = script("misbehaving", limits=Limits(time_s=5.0, memory_bytes=16 << 20))
    d = decode(codec, [1] * 3, bytes([30]), bytes([4]), bytes([31]))
    assert d.ok.tolist() == [True, False, True]
    assert "memory" in d.error[1]
    assert d.data[2] == {"value": 31}


def test_slow_chunks_are_resumed_not_failed() -> None:
    source = "function decodeUplink(input) { var x = 0; for (var i = 0; i < 20000; i++) x += i; return {data: {x}}; }"
    codec = ScriptCodec("test/slow", source, limits=Limits(time_s=0.05))
    n = 600  # far more work than one time limit in one chunk
    d = codec.decode(np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.uint8), np.arange(n + 1))
    assert d.ok.all()
    assert codec._chunk < n  # the first chunk (all of them) ran out of time and was resumed in smaller ones
    assert {o["x"] for o in d.data} == {sum(range(20000))}


def test_scripts_that_cannot_run_fail_when_loaded() -> None:
    with pytest.raises(ScriptLoadError, match="neither decodeUplink"):
        ScriptCodec("test/none", "function decode(x) { return {}; }")
    with pytest.raises(ScriptLoadError, match="does not load: SyntaxError"):
        ScriptCodec("test/syntax", "function decodeUplink(input) {")
    with pytest.raises(ScriptLoadError, match="ran out of time while loading"):
        ScriptCodec("test/loop", "for (;;) {}", limits=Limits(time_s=0.02))


def test_decode_row_is_one_call_with_the_same_contract() -> None:
    codec = script("acme-bin")
    assert codec.decode_row(1, bytes.fromhex("02bc0e1000d700"))["distance_mm"] == 700
    assert codec.decode_row(3, b"") == {"errors": ["unknown fPort 3"]}


def test_readings_map_scales_fields_maps_texts_and_derives_fill_level() -> None:
    bins = ReadingsMap.parse(_yaml("acme-bin.map.yaml"))
    codec = script("acme-bin", readings=bins)
    assert set(codec.quantities) == {"distance_mm", "battery_v", "temperature_c", "fill_pct"}
    d = decode(codec, [1, 1, 5], bytes.fromhex("02bc0e1000d700"), bytes.fromhex("00c80dacffce01"), b"")
    q = codec.domain(d, {"depth_mm": np.full(3, 1200.0), "full_mm": np.full(3, 200.0)})
    assert q["distance_mm"].values[:2].tolist() == [700, 200] and q["distance_mm"].present.tolist() == [1, 1, 0]
    assert q["battery_v"].values[:2].tolist() == pytest.approx([3.6, 3.5])
    assert q["fill_pct"].values[:2].tolist() == pytest.approx([50.0, 100.0])
    assert not q["fill_pct"].present[2]
    parking = script("acme-parking", readings=ReadingsMap.parse(_yaml("acme-parking.map.yaml")))
    d = decode(parking, [2, 2, 2], bytes([1, 100]), bytes([0, 120]), bytes([9, 0]))
    q = parking.domain(d, {})
    assert q["occupied"].values.tolist() == [1.0, 0.0, 0.0] and q["occupied"].present.tolist() == [1, 1, 0]
    assert q["battery_v"].values[:2].tolist() == pytest.approx([3.0, 3.2])


def test_readings_map_errors_name_the_quantity() -> None:
    with pytest.raises(ReadingsMapError, match="fill_level: not a hub quantity"):
        ReadingsMap.parse({"fill_level": "x"})
    with pytest.raises(ReadingsMapError, match="battery_v: scale must be a number"):
        ReadingsMap.parse({"battery_v": {"field": "mv", "scale": "1/1000"}})


def test_examples_from_ttn_yaml_and_json_run_as_tests() -> None:
    ttn = load_examples(SCRIPTS / "acme-bin.codec.yaml")
    assert [e["description"] for e in ttn] == ["half full bin", "tilted sensor, frost", "unknown port"]
    results = run_examples(script("acme-bin"), ttn)
    assert [r.passed for r in results] == [True, True, True], [r.differences for r in results]
    chirp = load_examples(SCRIPTS / "acme-parking.test_decode.json")
    assert [r.passed for r in run_examples(script("acme-parking"), chirp)] == [True]
    wrong = [{**ttn[0], "data": {**ttn[0]["data"], "distance_mm": 701, "extra": 1}}]
    (result,) = run_examples(script("acme-bin"), wrong)
    assert not result.passed
    assert result.differences == ["data.distance_mm: expected 701, got 700", "data.extra: missing, expected 1"]


def test_bad_examples_file_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('[{"input": {"fPort": 300, "bytes": [1]}, "output": {"data": {}}}]')
    with pytest.raises(ExamplesError, match="example 1: input.fPort must be an integer 0..255"):
        load_examples(f)


def test_diff_tells_booleans_from_numbers() -> None:
    assert diff({"a": True, "b": 3}, {"a": 1, "b": 3.0}) == ["data.a: expected true, got 1"]


def _yaml(name: str) -> object:
    return yaml.safe_load((SCRIPTS / name).read_text())


def test_text_the_database_cannot_store_is_the_scripts_error_not_the_batchs() -> None:
    codec = script("misbehaving")
    d = decode(codec, [1] * 4, bytes([11]), bytes([12]), bytes([13]), bytes([50]))
    assert d.ok.tolist() == [False, False, True, True]
    assert d.error[0] == "decoder data holds text that is not Unicode (a lone surrogate)"
    assert d.error[1] == "decoder data holds a NUL character"
    assert d.data[2] == {"text": "a \\ud800 that is no surrogate"}  # an escaped backslash, not a surrogate
    assert d.warnings[2] == ["lone \ufffd in a warning "]
    assert d.data[3] == {"value": 50}


def test_a_script_that_breaks_the_runners_output_fails_its_payloads_without_raising() -> None:
    source = """
    var join = Array.prototype.join;
    function decodeUplink(input) {
      if (input.bytes[0] === 1) Array.prototype.join = function () { return "{not json"; };
      return {data: {value: input.bytes[0]}};
    }
    """
    codec = ScriptCodec("test/breaker", source)
    d = decode(codec, [1, 1, 1], bytes([0]), bytes([1]), bytes([2]))
    assert d.ok.tolist() == [True, False, True]  # each payload alone, in a fresh engine after a breakage
    assert d.data[0] == {"value": 0} and d.data[2] == {"value": 2}
    assert d.error[1] == "decoder output is not valid JSON"


def test_an_engine_that_does_not_load_in_a_thread_fails_the_rows_not_the_batch() -> None:
    codec = ScriptCodec("test/late", "function decodeUplink(i) { return {data: {}}; }", limits=Limits(time_s=0.02))
    codec.source = "for (;;) {}"  # what a script that loads too slowly on a busy machine looks like
    codec._drop_engine()
    d = decode(codec, [1, 1], b"\x00", b"\x01")
    assert not d.ok.any()
    assert d.error.tolist() == ["script ran out of time while loading: InternalError: interrupted"] * 2
