"""One loaded payload codec script in a sandboxed JavaScript engine (QuickJS, through ``quickjs-ng``).

An :class:`Engine` is a fresh QuickJS runtime with a memory limit, the project's prelude (a Node-style
``Buffer`` and the batch runner, ``prelude.js``) and the script. The engine offers the language only: no
``std``/``os`` modules, no ``require``, no network, no timers (``setTimeout`` does not exist; ``performance``,
``queueMicrotask``, shared memory and weak references are removed). Each call from Python (a chunk of payloads,
or one payload) runs under a CPU time limit; a call that runs out of time or memory raises
:class:`EngineLimit`, after which the caller reads the results of the payloads finished before it
(:meth:`Engine.partial`).

A QuickJS context must not be used by two threads at once: :class:`~.codec.ScriptCodec` keeps one engine per
thread.

Exceptions::

    CodecError                      (ingest.codecs.base)
     +-- ScriptError                a codec script problem (attribute: codec_id)
          +-- ScriptLoadError       the script does not compile, or defines neither decodeUplink nor Decoder
          +-- EngineLimit           a call ran out of time or memory (attribute: limit: "time" | "memory")
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import quickjs

from ..base import CodecError

__all__ = ["Engine", "EngineLimit", "Limits", "ScriptError", "ScriptLoadError"]

_PRELUDE = resources.files(__package__).joinpath("prelude.js").read_text(encoding="utf-8")
_ENTRY = "typeof decodeUplink === 'function' ? 1 : typeof Decoder === 'function' ? 2 : 0"
DECODE_UPLINK, DECODER = 1, 2


class ScriptError(CodecError):
    def __init__(self, codec_id: str, message: str) -> None:
        super().__init__(f"{codec_id}: {message}")
        self.codec_id = codec_id
        self.message = message


class ScriptLoadError(ScriptError):
    """The script cannot be used (syntax error, an exception at load, no entry function)."""


class EngineLimit(ScriptError):
    def __init__(self, codec_id: str, limit: str, message: str) -> None:
        super().__init__(codec_id, message)
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    """Per call CPU seconds (QuickJS measures the process's CPU clock) and the engine's heap in bytes."""

    time_s: float = 0.1
    memory_bytes: int = 64 << 20


def _limit_of(exc: Exception) -> str | None:
    text = str(exc)
    if "interrupted" in text:
        return "time"
    if "out of memory" in text:
        return "memory"
    return None


class Engine:
    """A QuickJS runtime with the prelude and one script loaded (see the module docstring)."""

    def __init__(self, codec_id: str, source: str, limits: Limits) -> None:
        self.codec_id = codec_id
        self.limits = limits
        ctx = quickjs.Context()
        ctx.set_memory_limit(int(limits.memory_bytes))
        ctx.set_time_limit(float(limits.time_s))
        ctx.eval(_PRELUDE)
        try:
            ctx.eval(source)
            kind = ctx.eval(_ENTRY)
        except quickjs.JSException as exc:
            limit = _limit_of(exc)
            what = f"ran out of {limit} while loading" if limit else "does not load"
            raise ScriptLoadError(codec_id, f"script {what}: {_first_line(exc)}") from None
        if kind not in (DECODE_UPLINK, DECODER):
            raise ScriptLoadError(codec_id, "script defines neither decodeUplink(input) nor Decoder(bytes, port)")
        self.kind = int(kind)
        self._ctx = ctx
        self._run = ctx.get("__stadtpuls_run")
        self._partial = ctx.get("__stadtpuls_partial")

    def run(self, payloads: str, meta: str) -> str:
        """Decode a chunk: ``payloads`` one character per byte, ``meta`` JSON ``[lengths, fPorts, times ms]``.
        Returns JSON ``[[data or null per payload], [i, error, ...], [i, [warning, ...], ...]]``; raises
        :class:`EngineLimit`."""
        try:
            return "[" + str(self._run(self.kind, payloads, meta)) + "]"
        except quickjs.JSException as exc:
            limit = _limit_of(exc)
            if limit is None:  # the runner catches the script's exceptions: this is the engine itself
                raise EngineLimit(self.codec_id, "engine", f"engine error: {_first_line(exc)}") from None
            detail = (
                f"time limit exceeded ({self.limits.time_s:g} s CPU)"
                if limit == "time"
                else f"memory limit exceeded ({self.limits.memory_bytes} bytes)"
            )
            raise EngineLimit(self.codec_id, limit, detail) from None

    def partial(self) -> str:
        """The results (as :meth:`run` returns them) of the payloads finished by the last, interrupted, run."""
        return "[" + str(self._partial()) + "]"


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
