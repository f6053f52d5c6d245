"""``stadtpuls simulate``: export, files, replay, load mode and clear errors."""

from __future__ import annotations

import collections

import yaml

from stadtpuls.cli import main as cli
from stadtpuls.simulators import read_messages, read_truth


def test_export_alone_writes_the_registry_and_exits(tmp_path, capsys):
    assert cli(["simulate", "--city", "small", "--export-devices", str(tmp_path / "fleet.yaml")]) == 0
    doc = yaml.safe_load((tmp_path / "fleet.yaml").read_text())
    assert len(doc["devices"]) == 68 and "registry:" in capsys.readouterr().out
    assert cli(["simulate", "--city", "small", "--export-devices", str(tmp_path / "fleet.csv")]) == 0
    assert (tmp_path / "fleet.csv").read_text().startswith("dev_eui,codec,")


def test_bad_arguments_get_a_clear_message_and_exit_code_2(capsys):
    assert cli(["simulate", "--faults", "gaps=2", "--out", "/dev/null"]) == 2
    assert "gaps=2" in capsys.readouterr().err
    assert cli(["simulate", "--start", "next week", "--out", "/dev/null"]) == 2
    assert "next week" in capsys.readouterr().err
    assert cli(["simulate", "--rate", "0", "--out", "/dev/null", "--no-progress"]) == 2


def test_file_run_writes_messages_and_truth_then_replay_publishes_them(tmp_path, project_broker, subscriber, capsys):
    out, truth = tmp_path / "day.jsonl", tmp_path / "truth.jsonl"
    assert (
        cli(
            [
                "simulate",
                "--city",
                "small",
                "--start",
                "2025-06-02T04:00:00Z",
                "--duration",
                "3h",
                "--format",
                "tts",
                "--out",
                str(out),
                "--truth",
                str(truth),
                "--no-progress",
            ]
        )
        == 0
    )
    messages = list(read_messages(out))
    lines, summary = read_truth(truth)
    assert summary["published"] == len(messages) and summary["measurements"] == len(lines)
    assert all(m.topic.startswith("v3/city-sensors@stadtpuls/devices/") for m in messages)
    assert cli(["simulate", "--replay", str(out), "--mqtt-url", project_broker.url, "--no-progress"]) == 0
    got = subscriber.wait_for(len(messages))
    assert collections.Counter(got) == collections.Counter((m.topic, m.payload) for m in messages)
    assert f"replayed {len(messages)} messages" in capsys.readouterr().out


def test_load_mode_publishes_the_count_and_reports_it(project_broker, subscriber, capsys):
    assert (
        cli(
            [
                "simulate",
                "--city",
                "small",
                "--rate",
                "0",
                "--count",
                "5000",
                "--faults",
                "duplicates=0.02",
                "--mqtt-url",
                project_broker.url,
                "--start",
                "2025-06-02",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "load: 5000 uplinks" in out and "duplicates=" in out
    sent = int(out.split(" messages sent")[0].rsplit(" ", 1)[1])
    assert sent > 5000 and len(subscriber.wait_for(sent)) == sent


def test_accelerated_run_publishes_every_message_to_the_broker(project_broker, subscriber, capsys):
    assert (
        cli(
            [
                "simulate",
                "--city",
                "small",
                "--start",
                "2025-06-02T06:00:00Z",
                "--duration",
                "1h",
                "--speed",
                "7200",
                "--mqtt-url",
                project_broker.url,
                "--format",
                "chirpstack",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    sent = int(out.split(" messages sent")[0].rsplit(" ", 1)[1])
    got = subscriber.wait_for(sent)
    assert sent > 100 and len(got) == sent
    assert all(topic.startswith("application/") for topic, _ in got)


def test_load_mode_to_a_file_with_its_ground_truth(tmp_path):
    out, truth = tmp_path / "load.jsonl", tmp_path / "load.truth.jsonl"
    assert (
        cli(
            [
                "simulate",
                "--city",
                "small",
                "--rate",
                "1000",
                "--count",
                "3000",
                "--faults",
                "garbage=0.05",
                "--start",
                "2025-06-02",
                "--out",
                str(out),
                "--truth",
                str(truth),
                "--no-progress",
            ]
        )
        == 0
    )
    messages = list(read_messages(out))
    lines, summary = read_truth(truth)
    assert summary["mode"] == "load" and summary["uplinks"] == len(lines) == len(messages) == 3000
    garbled = [ln for ln in lines if "garbage" in ln["faults"]]
    assert len(garbled) == summary["faults"]["garbage"] > 50
    assert lines[1]["t"] == "2025-06-02T00:00:00.001000Z"  # a thousand a second
