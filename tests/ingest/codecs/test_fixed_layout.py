"""Properties of the fixed-layout codecs (Netvox R718X/R719A, Nwave NPS405, Bosch TPS110, Dragino LHT65).

* The vectorised ``decode`` equals the per-message ``decode_row`` on arbitrary bytes and fPorts, row by row,
  including which rows fail and why; nothing raises.
* ``encode`` then ``decode`` gives the encoded field values back, over the devices' real value ranges.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stadtpuls.ingest.codecs import get

from ...conftest import examples

CODECS = ["netvox/r718x", "netvox/r719a", "nwave/nps405", "bosch/tps110", "dragino/lht65"]
PROPERTY = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(actual: Any, expected: Any, where: str = "$") -> None:
    """Numbers by value, everything else exactly (a bool is not a number)."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        assert type(actual) is type(expected) and actual == expected, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, int | float):
        assert not isinstance(actual, bool) and actual == expected, f"{where}: {actual!r} != {expected!r}"
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            same(a, e, f"{where}[{i}]")
    else:
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), f"{where}: {actual!r}"
        for k in expected:
            same(actual[k], expected[k], f"{where}.{k}")


def as_batch(frames: list[tuple[int, bytes]], pad: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch arrays; with ``pad``, the payloads sit after ``pad`` junk bytes and before ``pad`` more."""
    ports = np.array([p for p, _ in frames], dtype=np.int64)
    offsets = np.full(len(frames) + 1, pad, dtype=np.int64)
    offsets[1:] += np.cumsum([len(b) for _, b in frames], dtype=np.int64)
    junk = b"\xa5" * pad
    return ports, np.frombuffer(junk + b"".join(b for _, b in frames) + junk, dtype=np.uint8), offsets


def payloads() -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, weighted towards the lengths the layouts use (so most rows pass the length check)."""
    exact = [st.binary(min_size=n, max_size=n) for n in (1, 2, 5, 6, 10, 11, 17)]
    return st.one_of(*exact, st.binary(max_size=24))


def frames_for(codec_id: str) -> st.SearchStrategy[list[tuple[int, bytes]]]:
    ports = st.one_of(st.sampled_from(get(codec_id).f_ports), st.integers(-3, 300))
    return st.lists(st.tuples(ports, payloads()), max_size=40)


def check_matches_reference(codec_id: str, frames: list[tuple[int, bytes]], pad: int = 0) -> None:
    codec = get(codec_id)
    decoded = codec.decode(*as_batch(frames, pad))
    assert decoded.n == len(frames)
    objects = decoded.objects()
    for i, (port, payload) in enumerate(frames):
        ref = codec.decode_row(port, payload)
        where = f"row {i} port {port} {payload.hex()}"
        if set(ref) == {"errors"}:
            assert not decoded.ok[i] and objects[i] is None, where
            assert [decoded.error[i]] == ref["errors"], where
        else:
            assert decoded.ok[i], f"{where}: {decoded.error[i]}"
            same(objects[i], ref, where)


@pytest.mark.parametrize("codec_id", CODECS)
def test_vectorised_decode_equals_per_message_reference_on_arbitrary_bytes(codec_id: str) -> None:
    @PROPERTY
    @given(frames_for(codec_id), st.integers(0, 3))
    def run(frames: list[tuple[int, bytes]], pad: int) -> None:
        check_matches_reference(codec_id, frames, pad)

    run()


@pytest.mark.parametrize("codec_id", CODECS)
def test_batch_of_one_layout_equals_reference(codec_id: str) -> None:
    """A batch whose rows all share one layout takes the zero-copy path; it must agree too."""

    @PROPERTY
    @given(st.sampled_from(get(codec_id).f_ports), st.integers(0, 17), st.data())
    def run(port: int, length: int, data: st.DataObject) -> None:
        rows = data.draw(st.lists(st.binary(min_size=length, max_size=length), min_size=1, max_size=30))
        check_matches_reference(codec_id, [(port, b) for b in rows])

    run()


@pytest.mark.parametrize("codec_id", CODECS)
def test_empty_batch_decodes_to_nothing(codec_id: str) -> None:
    decoded = get(codec_id).decode(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(1, np.int64))
    assert decoded.n == 0 and decoded.objects() == []


# --- encode -> decode round trips -----------------------------------------------------------------------

tenths = st.integers(0, 127).map(lambda k: k / 10)
low_battery = st.integers(0, 127).map(lambda k: f"{k // 10 if k % 10 == 0 else k / 10}(low battery)")
volt = st.one_of(tenths, low_battery)
u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 255)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
datecode = st.binary(min_size=4, max_size=4).map(bytes.hex)
version_report = st.fixed_dictionaries({"SWver": u8.map(lambda k: k / 10), "HWver": u8, "Datecode": datecode})

r718x_status = st.one_of(
    st.fixed_dictionaries(
        {
            "Device": st.just("R718X"),
            "Volt": volt,
            "Status": st.sampled_from(["ON", "OFF"]),
            "Distance": u16,
            "Temp": st.integers(-0x8000, 0x7FFF).map(lambda k: k / 10),
            "FillLevel": u8,
            "AngleOfInclination": u8,
        }
    ),
    st.fixed_dictionaries(
        {
            "Device": st.just("R718PE"),
            "Volt": volt,
            "Status": st.sampled_from(["ON", "OFF"]),
            "Distance": u16,
            "FillLevel": u8,
        }
    ),
)


def r718x_config() -> st.SearchStrategy[dict[str, Any]]:
    device = st.sampled_from(["R718X", "R718PE"])
    result = st.fixed_dictionaries(
        {
            "Cmd": st.sampled_from(
                [
                    "ConfigReportRsp",
                    "SetOnDistanceThresholdRsp",
                    "SetFillMaxDistanceRsp",
                    "SetDeadZoneDistanceRsp",
                ]
            ),
            "Device": device,
            "Status": st.sampled_from(["Success", "Failure"]),
        }
    )
    values = st.sampled_from(
        [
            ("GetOnDistanceThresholdRsp", "OnDistanceThreshold"),
            ("GetFillMaxDistanceRsp", "FillMaxDistance"),
            ("GetDeadZoneDistanceRsp", "DeadZoneDistance"),
        ]
    ).flatmap(lambda cf: st.fixed_dictionaries({"Cmd": st.just(cf[0]), "Device": device, cf[1]: u16}))
    read = device.flatmap(
        lambda dev: st.fixed_dictionaries(
            {
                "Cmd": st.just("ReadConfigReportRsp"),
                "Device": st.just(dev),
                "MinTime": u16,
                "MaxTime": u16,
                "BatteryChange": u8.map(lambda k: k / 10),
                "DistanceChange": u16,
                **({"TempChange": u16.map(lambda k: k / 10)} if dev == "R718X" else {}),
            }
        )
    )
    requests = st.fixed_dictionaries(
        {"Cmd": st.sampled_from(["ConfigReportReq", "GetDeadZoneDistanceReq"]), "Device": device}
    )
    return st.one_of(result, values, read, requests)


r719a_device = st.sampled_from(["R719A", "R719B"])
r719a_config = st.one_of(
    st.fixed_dictionaries(
        {
            "Cmd": st.just("ConfigReportRsp"),
            "Device": r719a_device,
            "Status": st.sampled_from(["Success", "Failure"]),
        }
    ),
    st.fixed_dictionaries(
        {
            "Cmd": st.just("ReadConfigReportRsp"),
            "Device": r719a_device,
            "MinTime": u16,
            "MaxTime": u16,
            "BatteryChange": u8.map(lambda k: k / 10),
        }
    ),
)


def expand(c: int) -> dict[str, Any]:
    """The NPS405 duration keys of compressed value c, from the format's table."""
    if c < 90:
        d, e = c, 0
    elif c < 120:
        d, e = 90 + (c - 90) * 5, 4
    elif c < 127:
        d, e = 240 + (c - 120) * 60, 59
    else:
        return {
            "previous_state_duration": 660,
            "previous_state_duration_error": None,
            "previous_state_duration_overflow": True,
        }
    return {
        "previous_state_duration": d,
        "previous_state_duration_error": e,
        "previous_state_duration_overflow": False,
    }


def health(mv: int, t: float) -> str:
    low, critical = (3000, 2900) if t >= -5 else (2900, 2800)
    return "normal" if mv >= low else "low" if mv >= critical else "critical"


firmware = st.tuples(u8, u8, u8).map(lambda v: ".".join(map(str, v)))
nps405 = {
    1: st.builds(
        lambda occ, c: {"type": "parking_status", "occupied": occ, **expand(c)},
        st.booleans(),
        st.integers(0, 127),
    ),
    2: st.builds(
        lambda hw, k, j: {
            "type": "heartbeat",
            "occupied": bool(hw & 1),
            "hw_health_status": hw,
            "battery_voltage": (2500 + 4 * k) / 1000,
            "temperature": j / 2 + 10,
            "battery_health": health(2500 + 4 * k, j / 2 + 10),
        },
        st.integers(0, 127),
        u8,
        st.integers(-128, 127),
    ),
    3: st.builds(
        lambda fw, cause, occ: {
            "type": "startup",
            "firmware_version": fw,
            "occupied": occ,
            **({"reset_cause": cause} if cause else {}),
        },
        firmware,
        st.sampled_from(
            [None, "rejoining_lorawan_network", "watchdog", "power_on", "user_request", "brownout", "other"]
        ),
        st.booleans(),
    ),
    6: st.builds(lambda b: {"type": "debug", "bytes": list(b)}, st.binary(max_size=20)),
    10: st.builds(
        lambda c, tag: {
            "type": "user_registration",
            "tag_id": f"{tag:X}",
            **(
                {"occupied": True, **expand(c)}
                if c is not None
                else {
                    "occupied": None,
                    "previous_state_duration": None,
                    "previous_state_duration_error": None,
                    "previous_state_duration_overflow": None,
                }
            ),
        },
        st.one_of(st.none(), st.integers(0, 127)),
        i32,
    ),
}
tps110 = {
    1: st.builds(lambda occ: {"type": "parking status", "occupied": occ}, st.booleans()),
    2: st.builds(
        lambda occ, t: {"type": "heartbeat", "occupied": occ, "temperature": t},
        st.booleans(),
        st.integers(-128, 127),
    ),
    3: st.builds(
        lambda codes, fw, cause, occ: {
            "type": "startup",
            "debugCodes": codes,
            "firmwareVersion": fw,
            "occupied": occ,
            **({"resetCause": cause} if cause else {}),
        },
        st.lists(st.integers(1, 0xFFF), max_size=3),
        firmware,
        st.sampled_from([None, "watchdog", "power on", "system request", "other"]),
        st.booleans(),
    ),
    4: st.builds(lambda b: {"type": "device information", "bytes": list(b)}, st.binary(max_size=20)),
    5: st.builds(lambda b: {"type": "device usage", "bytes": list(b)}, st.binary(max_size=20)),
    6: st.builds(
        lambda ts, code, seq: {"type": "debug", "timestamp": ts, "debugCode": code, "sequenceNumber": seq},
        i32,
        st.integers(0, 0xFFF),
        u16,
    ),
}


@st.composite
def lht65_reading(draw: st.DrawFn) -> dict[str, Any]:
    mode = draw(st.sampled_from([0, 1, 2, 4, 5, 6, 7, 8, 9, 15]))
    hundredths = st.integers(-0x8000, 0x7FFF).map(lambda k: k / 100)
    obj: dict[str, Any] = {"Bat_status": draw(st.integers(0, 3))}
    if mode == 9:
        obj["TempC_DS"] = draw(hundredths)
    else:
        obj["BatV"] = draw(st.integers(0, 0x3FFF)) / 1000
    if mode != 15:
        obj["TempC_SHT"] = draw(hundredths)
        obj["Hum_SHT"] = draw(st.integers(0, 0xFFF)) / 10
    if draw(st.booleans()):
        obj["No_connect"] = "Sensor no connection"
    if mode == 0:
        obj["Ext_sensor"] = "No external sensor"
    elif mode == 1:
        obj.update(Ext_sensor="Temperature Sensor", TempC_DS=draw(hundredths))
    elif mode == 4:
        obj.update(
            Work_mode="Interrupt Sensor send",
            Exti_pin_level=draw(st.sampled_from(["High", "Low"])),
            Exti_status=draw(st.sampled_from(["True", "False"])),
        )
    elif mode == 5:
        obj.update(Work_mode="Illumination Sensor", ILL_lx=draw(u16))
    elif mode == 6:
        obj.update(Work_mode="ADC Sensor", ADC_V=draw(u16) / 1000)
    elif mode in (7, 8):
        obj.update(Work_mode="Interrupt Sensor count", Exit_count=draw(u16 if mode == 7 else i32))
    elif mode == 9:
        obj.update(Work_mode="DS18B20 & timestamp", Systimestamp=draw(i32))
    elif mode == 15:
        obj.update(Work_mode="DS18B20ID", ID="".join(f"{b:02x} " for b in draw(st.binary(min_size=8, max_size=8))))
    return obj


LAYOUTS: list[Any] = [
    pytest.param("netvox/r718x", 6, r718x_status, id="r718x-status"),
    pytest.param("netvox/r718x", 6, version_report.map(lambda o: {"Device": "R718X", **o}), id="r718x-version"),
    pytest.param("netvox/r718x", 7, r718x_config(), id="r718x-config"),
    pytest.param(
        "netvox/r719a",
        6,
        st.fixed_dictionaries({"Device": r719a_device, "Volt": volt, "CarOnOff": u8}),
        id="r719a-status",
    ),
    pytest.param("netvox/r719a", 6, version_report.map(lambda o: {"Device": "R719A", **o}), id="r719a-version"),
    pytest.param("netvox/r719a", 7, r719a_config, id="r719a-config"),
    *[pytest.param("nwave/nps405", p, s, id=f"nps405-port{p}") for p, s in nps405.items()],
    *[pytest.param("bosch/tps110", p, s, id=f"tps110-port{p}") for p, s in tps110.items()],
    pytest.param(
        "bosch/tps110",
        2,
        st.builds(lambda occ: {"type": "heartbeat", "occupied": occ}, st.booleans()),
        id="tps110-port2-without-temperature",
    ),
    pytest.param("dragino/lht65", 2, lht65_reading(), id="lht65"),
]


def to_columns(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Row objects as encode() input: one array per key, None where a row has no such key."""
    keys = sorted({k for r in rows for k in r})
    columns = {}
    for k in keys:
        col = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):
            col[i] = r.get(k)  # element-wise, so list values (bytes, debugCodes) stay lists
        columns[k] = col
    return columns


@pytest.mark.parametrize(("codec_id", "port", "rows"), LAYOUTS)
def test_encode_then_decode_gives_the_values_back(codec_id: str, port: int, rows: st.SearchStrategy) -> None:
    codec = get(codec_id)

    @PROPERTY
    @given(st.lists(rows, min_size=1, max_size=25))
    def run(objs: list[dict[str, Any]]) -> None:
        buf, offsets = codec.encode(port, to_columns(objs))
        assert len(offsets) == len(objs) + 1
        decoded = codec.decode(np.full(len(objs), port), buf, offsets)
        for i, (got, want) in enumerate(zip(decoded.objects(), objs, strict=True)):
            assert got is not None, decoded.error[i]
            same(got, want, f"row {i}")
            same(codec.decode_row(port, bytes(buf[offsets[i] : offsets[i + 1]])), want, f"row {i} decode_row")

    run()


@pytest.mark.parametrize("codec_id", CODECS)
def test_every_first_byte_of_every_port_equals_reference(codec_id: str) -> None:
    """Tables read arithmetically (the Nwave durations) and masks shared between frame types, exhaustively over the
    first byte: every value of it, on every fPort, mixed in one batch."""
    rest = bytes(range(1, 17))
    frames = [(port, bytes([b]) + rest) for port in get(codec_id).f_ports for b in range(256)]
    check_matches_reference(codec_id, frames)


def test_table_pieces_equal_the_table() -> None:
    from stadtpuls.ingest.codecs.fixed_fields import _Pieces

    rng = np.random.default_rng(5)
    found = 0
    for _ in range(3000):
        n = int(rng.integers(2, 60))
        steps = rng.choice([0, 0, 0, 0, 1, 2, -3, 7, 60], n - 1)
        values = [int(v) for v in np.concatenate([[0], np.cumsum(steps)]) + int(rng.integers(-9, 9))]
        pieces = _Pieces.of(values)
        if pieces is None:
            continue
        found += 1
        assert pieces.apply(np.arange(n, dtype=np.uint8)).tolist() == values, values
    assert found > 100  # the random tables include enough of a few pieces
