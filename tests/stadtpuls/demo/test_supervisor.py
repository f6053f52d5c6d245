"""Child processes of the demo: own process groups, ordered stop, grandchildren and leftovers of killed runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stadtpuls.demo.supervisor import Child, Supervisor, pid_alive

PY = sys.executable


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_file(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} not written"
        time.sleep(0.05)
    return path.read_text().strip()


def test_child_runs_in_its_own_process_group_and_stop_ends_its_grandchildren(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    child = Child(
        "shell",
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"],
        dict(os.environ),
        log_path=tmp_path / "shell.log",
    )
    child.start()
    try:
        grandchild = int(wait_file(pid_file))
        assert child.pid is not None and os.getpgid(child.pid) == child.pid != os.getpgid(0)
        assert pid_alive(grandchild)
    finally:
        child.stop()
    assert not child.running()
    assert wait_gone(grandchild)


def test_child_ignoring_sigterm_is_killed_after_its_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        f"import signal, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).write_text('1'); time.sleep(60)"
    )
    child = Child("stubborn", [PY, "-c", code], dict(os.environ), stop_timeout=0.5)
    child.start()
    wait_file(ready)
    assert child.stop() == -signal.SIGKILL


def test_stop_all_stops_the_last_started_first_and_runs_after_stop(tmp_path: Path) -> None:
    order: list[str] = []
    supervisor = Supervisor(run_dir=tmp_path / "run")
    for name in ("broker", "ingest", "api"):
        supervisor.start(Child(name, ["sleep", "60"], dict(os.environ), after_stop=lambda n=name: order.append(n)))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["api.pid", "broker.pid", "ingest.pid"]
    codes = supervisor.stop_all()
    assert order == ["api", "ingest", "broker"]
    assert codes == {"api": -signal.SIGTERM, "ingest": -signal.SIGTERM, "broker": -signal.SIGTERM}
    assert list((tmp_path / "run").iterdir()) == []


def test_exited_lists_children_that_ended_on_their_own() -> None:
    supervisor = Supervisor()
    quick = supervisor.start(Child("quick", [PY, "-c", "raise SystemExit(3)"], dict(os.environ)))
    supervisor.start(Child("slow", ["sleep", "60"], dict(os.environ)))
    try:
        deadline = time.monotonic() + 10
        while not supervisor.exited():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert supervisor.exited() == [quick] and quick.returncode() == 3
    finally:
        supervisor.stop_all()


def test_stop_leftovers_ends_the_children_of_a_killed_run_and_spares_other_processes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    crashed = Supervisor(run_dir=run_dir)
    orphan = crashed.start(Child("ingest", ["sleep", "61"], dict(os.environ)))
    assert orphan.pid is not None
    # a record whose pid now belongs to another program must not be touched
    (run_dir / "api.pid").write_text(json.dumps({"pid": os.getpid(), "cmdline": "stadtpuls\0api\0"}))
    stopped = Supervisor(run_dir=run_dir).stop_leftovers()
    assert stopped == [orphan.pid]
    assert orphan.proc is not None and orphan.proc.wait(10) == -signal.SIGTERM
    assert pid_alive(os.getpid())
    assert list(run_dir.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_children_end_when_the_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child"
    code = (
        "import os, pathlib, time\n"
        "from stadtpuls.demo.supervisor import Child\n"
        "c = Child('sleeper', ['sleep', '60'], dict(os.environ))\n"
        "c.start()\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(c.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([PY, "-c", code])
    try:
        child = int(wait_file(pid_file))
        assert pid_alive(child)
        parent.kill()
        parent.wait()
        assert wait_gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
