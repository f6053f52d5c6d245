"""Child processes of the demo, each in its own session (process group), stopped in reverse start order.

A child never sees the terminal's Ctrl-C: the parent catches it and stops the children one by one (SIGTERM to the
whole group, then SIGKILL after a grace period), so a service can flush before the one it depends on goes away.
On Linux each child also gets SIGTERM when the parent dies without cleaning up (``PR_SET_PDEATHSIG``).

Exceptions::

    ChildError          a child could not be started (attributes: name, argv)
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..logs import get_logger

__all__ = ["Child", "ChildError", "Supervisor", "pid_alive"]

log = get_logger("stadtpuls.demo.supervisor")
_PR_SET_PDEATHSIG = 1


class ChildError(Exception):
    def __init__(self, name: str, argv: list[str], message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.argv = argv


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path | None = None
    stop_timeout: float = 10.0
    after_stop: Callable[[], object] | None = None  # runs once the child has ended
    proc: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            out = self._log_file
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as e:
            self._close_log()
            raise ChildError(self.name, self.argv, f"cannot start: {e}") from None
        log.info("child started", extra={"child": self.name, "pid": self.proc.pid})

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> int | None:
        """SIGTERM to the child's process group, SIGKILL after ``stop_timeout``; returns the exit code."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # the child leads its own session and group
        if self.proc.poll() is None:
            self._signal_group(pgid, signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log.warning("child did not stop, killing it", extra={"child": self.name, "pid": pgid})
                self._signal_group(pgid, signal.SIGKILL)
                self.proc.wait()
        # grandchildren left in the group (e.g. worker processes) go with it
        self._signal_group(pgid, signal.SIGKILL)
        code = self.proc.returncode
        log.info("child stopped", extra={"child": self.name, "pid": pgid, "code": code})
        self._close_log()
        if self.after_stop is not None:
            self.after_stop()
        return code

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


@dataclass
class Supervisor:
    """Starts children and stops them all, last started first.

    With ``run_dir``, each child's pid and command line are kept in ``<run_dir>/<name>.pid`` while it runs, so
    :meth:`stop_leftovers` can stop the children of a run that was killed before it could clean up.
    """

    run_dir: Path | None = None
    children: list[Child] = field(default_factory=list)

    def start(self, child: Child) -> Child:
        child.start()
        self.children.append(child)
        if self.run_dir is not None and child.proc is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            record = {"pid": child.proc.pid, "cmdline": "\0".join(child.argv) + "\0"}
            (self.run_dir / f"{child.name}.pid").write_text(json.dumps(record))
        return child

    def stop_leftovers(self) -> list[int]:
        """Stop processes recorded in ``run_dir`` that still run the recorded command; returns their pids."""
        stopped: list[int] = []
        if self.run_dir is None or not self.run_dir.is_dir():
            return stopped
        for path in sorted(self.run_dir.glob("*.pid")):
            try:
                record = json.loads(path.read_text())
                pid, cmdline = int(record["pid"]), str(record["cmdline"]).encode()
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)
                continue
            if _cmdline(pid) == cmdline and pid_alive(pid):
                log.warning("stopping a process left over from an earlier run", extra={"child": path.stem, "pid": pid})
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5.0
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                stopped.append(pid)
            path.unlink(missing_ok=True)
        return stopped

    def get(self, name: str) -> Child | None:
        return next((c for c in self.children if c.name == name), None)

    def exited(self) -> list[Child]:
        """Children that ended on their own."""
        return [c for c in self.children if c.proc is not None and c.proc.poll() is not None]

    def stop_all(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for child in reversed(self.children):
            codes[child.name] = child.stop()
            if self.run_dir is not None:
                (self.run_dir / f"{child.name}.pid").unlink(missing_ok=True)
        self.children.clear()
        return codes

    @staticmethod
    def wait_until(child: Child, check: Callable[[], bool], timeout: float) -> bool:
        """Poll ``check()`` until it is true, the child ends, or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return True
            if not child.running():
                return False
            time.sleep(0.2)
        return False
