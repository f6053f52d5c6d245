"""``stadtpuls decode --codec ID``: JSON lines in, one JSON line out per input. The first test runs it as a real
subprocess (what a shell pipes into); the others call the command line in-process (``run_cli``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ...conftest import Cli

REPO = Path(__file__).resolve().parents[3]
NO_DATABASE = "postgresql://postgres@127.0.0.1:1/none"  # a built-in codec decodes without a database


def run_decode(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "stadtpuls.cli", "decode", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )


def lines(*objs: object) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def test_decode_writes_official_objects_in_input_order_with_javascript_numbers() -> None:
    stdin = lines(
        {"f_port": 6, "bytes_hex": "0159011e01000000000000"},
        {"f_port": 7, "bytes_hex": "8259038407080100000000"},
        {"f_port": 6, "bytes_hex": "015900640b202004240000"},
    )
    result = run_decode("--codec", "netvox/r719a", stdin=stdin)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert [json.loads(line) for line in out] == [
        {"Device": "R719A", "Volt": 3, "CarOnOff": 1},
        {
            "Cmd": "ReadConfigReportRsp",
            "Device": "R719A",
            "MinTime": 900,
            "MaxTime": 1800,
            "BatteryChange": 0.1,
        },
        {"Device": "R719A", "SWver": 10, "HWver": 11, "Datecode": "20200424"},
    ]
    assert '"Volt":3,' in out[0] and '"SWver":10,' in out[2]  # 3.0 printed as 3, like the JavaScript decoder


def test_bad_lines_get_their_own_error_and_the_rest_still_decode(run_cli: Cli) -> None:
    stdin = lines(
        "this is not json",
        {"f_port": 2, "bytes_hex": "cbf60b0d0376010add7fff"},
        {"f_port": 2, "bytes_hex": "zz"},
        {"f_port": 2, "bytes_hex": "abc"},
        {"bytes_hex": "cbf60b0d0376010add7fff"},
        [1, 2],
        "",
        {"f_port": 42, "bytes_hex": "cbf60b0d0376010add7fff"},
        {"f_port": 2, "bytes_hex": "cbf6"},
    )
    result = run_cli(NO_DATABASE, "decode", "--codec", "dragino/lht65", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 8  # the blank line is not an input
    assert out[0]["error"].startswith("bad JSON")
    assert out[1]["TempC_DS"] == 27.81 and out[1]["Ext_sensor"] == "Temperature Sensor"
    assert out[2]["error"].startswith("bad hex") and out[3]["error"].startswith("bad hex")
    assert out[4]["error"].startswith("bad f_port")
    assert out[5]["error"].startswith("bad input")
    assert out[6] == {"error": "unknown FPort"}
    assert out[7] == {"error": "wrong length: 2 bytes, expected 11"}


def test_unknown_codec_exits_2_with_a_clear_message(run_cli: Cli, clean_db: str) -> None:
    # a codec id that is not built in is looked up among the database's script codecs
    result = run_cli(
        clean_db, "decode", "--codec", "acme/does-not-exist", stdin=lines({"f_port": 1, "bytes_hex": "00"})
    )
    assert result.returncode == 2
    assert "unknown codec 'acme/does-not-exist'" in result.stderr
    assert "netvox/r718x" in result.stderr  # lists the known ones
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_empty_input_gives_empty_output(run_cli: Cli) -> None:
    result = run_cli(NO_DATABASE, "decode", "--codec", "bosch/tps110", stdin="")
    assert result.returncode == 0 and result.stdout == ""
