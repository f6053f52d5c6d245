"""A JavaScript payload codec (``decodeUplink(input)`` or ``Decoder(bytes, port)``) behind the codec interface.

:class:`ScriptCodec` decodes a batch like every other codec: fPorts and payloads in, a
:class:`~ingest.codecs.base.Decoded` with an ok mask and per-row errors out. Inside, the batch goes to the
engine in chunks, one call per chunk, with the loop running in JavaScript (``prelude.js``): the payloads as one
text of one character per byte, lengths, fPorts and receive times as one JSON text, the results back as one JSON
text. Per row the result is the script's ``data`` (with its ``warnings``), or the error: the script's
``errors``, an exception it threw, or junk it returned (no object, data that is not JSON).

Limits: every engine call has the CPU time limit. A chunk that runs out of time or memory keeps the results of
the payloads finished before it; the payload it was on is run again alone, with a fresh engine after a memory
failure. If it fails alone too, that payload fails with the limit as its reason and the engine is replaced (the
script's state may be broken); if it passes, the chunk was only slow, and later chunks are smaller. After
:data:`MAX_LIMIT_FAILURES` such payloads in one batch, the rest of the codec's batch fails without running, so a
script that loops forever costs each batch at most a few time limits. Failed rows become dead letters; the raw
uplinks are stored anyway and can be decoded again (``stadtpuls redecode``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from ..base import Codec, Column, Decoded
from .engine import Engine, EngineLimit, Limits, ScriptLoadError
from .readings import ReadingsMap

__all__ = ["MAX_LIMIT_FAILURES", "ObjectColumns", "ScriptCodec", "ScriptDecoded", "configure_limits", "default_limits"]

MAX_LIMIT_FAILURES = 3
_CHUNK = 4096
_limits = Limits()


def configure_limits(limits: Limits) -> None:
    """Set the limits of script codecs created from now on (the ingest does this from its settings)."""
    global _limits
    _limits = limits


def default_limits() -> Limits:
    return _limits


class _BadOutput(Exception):
    """The engine's result text of a chunk is not what the runner writes (a script broke the runner's JSON)."""


class ObjectColumns(dict[str, Column]):
    """The top-level keys of decoded objects as columns, each built when first asked for: ``get(key)`` and
    ``[key]`` build one column, iterating builds them all. The ingest asks for a few keys at most (a position),
    so a batch does not pay for columns nobody reads."""

    def __init__(self, data: list[Any]) -> None:
        super().__init__()
        self._data = data
        self._complete = False

    def _column(self, key: str) -> Column | None:
        n = len(self._data)
        present = np.fromiter((obj is not None and key in obj for obj in self._data), dtype=bool, count=n)
        if not present.any():
            return None
        values = np.empty(n, dtype=object)
        values[:] = [obj.get(key) if obj is not None else None for obj in self._data]
        return Column(values, present)

    def __missing__(self, key: str) -> Column:
        col = None if self._complete else self._column(key)
        if col is None:
            raise KeyError(key)
        self[key] = col
        return col

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def _fill(self) -> None:
        if not self._complete:
            keys: dict[str, None] = {}
            for obj in self._data:
                if obj:
                    keys.update(dict.fromkeys(obj))
            for key in keys:
                self.get(key)
            self._complete = True

    def __iter__(self) -> Any:
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def keys(self) -> Any:
        self._fill()
        return super().keys()

    def values(self) -> Any:
        self._fill()
        return super().values()

    def items(self) -> Any:
        self._fill()
        return super().items()


class ScriptDecoded(Decoded):
    """A decoded batch of a script codec: ``data[i]`` is row i's object as the script returned it (None for
    failed rows), ``warnings[i]`` its warnings. ``columns`` (one per top-level key) are built when first read
    (:class:`ObjectColumns`)."""

    def __init__(
        self, ok: np.ndarray, error: np.ndarray, data: list[Any], warnings: list[list[str] | None], version: int
    ) -> None:
        super().__init__(len(data), ok, error, ObjectColumns(data))
        self.data = data
        self.warnings = warnings
        self.version = version

    def objects(self) -> list[dict[str, Any] | None]:
        return list(self.data)

    def kept_objects(self) -> tuple[list[Any], list[list[str] | None], int]:
        return self.data, self.warnings, self.version


class ScriptCodec(Codec):
    """One version of a stored (or given) codec script; see the module docstring."""

    fields = ()

    def __init__(
        self,
        codec_id: str,
        source: str,
        *,
        version: int = 0,
        sha256: str = "",
        readings: ReadingsMap | None = None,
        f_ports: tuple[int, ...] = (),
        limits: Limits | None = None,
    ) -> None:
        # class attributes of a built-in codec; a script codec is one instance per script
        self.id = codec_id  # type: ignore[misc]
        self.f_ports = f_ports  # type: ignore[misc]
        self.readings = readings or ReadingsMap()
        self.quantities = self.readings.quantities  # type: ignore[misc]
        self.source = source
        self.version = version
        self.sha256 = sha256
        self.limits = limits or _limits
        self._local = threading.local()
        self._chunk = _CHUNK
        self.engine()  # a script that does not load fails here, not at the first uplink

    def engine(self) -> Engine:
        """This thread's engine, loaded on first use."""
        eng: Engine | None = getattr(self._local, "engine", None)
        if eng is None:
            eng = self._local.engine = Engine(self.id, self.source, self.limits)
        return eng

    def _drop_engine(self) -> None:
        self._local.engine = None

    # --- decoding -------------------------------------------------------------------------------------

    def decode(self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray) -> ScriptDecoded:
        return self.decode_uplinks(f_port, buf, offsets, None)

    def decode_uplinks(
        self, f_port: np.ndarray, buf: np.ndarray, offsets: np.ndarray, recv_time: np.ndarray | None
    ) -> ScriptDecoded:
        """Decode a batch; ``recv_time`` (``datetime64``, one per row) is the scripts' ``input.recvTime``
        (now, when not given)."""
        offsets = np.asarray(offsets, dtype=np.int64)
        n = max(len(offsets) - 1, 0)
        base = int(offsets[0]) if n else 0
        text = buf[base : int(offsets[-1]) if n else 0].tobytes().decode("latin-1")
        bounds = offsets - base
        if recv_time is None:
            times = np.full(n, time.time() * 1000.0)
        else:
            times = np.asarray(recv_time).astype("datetime64[us]").astype(np.int64) / 1000.0
        try:
            data, failed, warned = self._run(text, bounds, np.asarray(f_port, dtype=np.int64), times)
        except ScriptLoadError as exc:  # this thread's engine did not load (e.g. its time limit on a busy machine)
            data, failed, warned = [None] * n, dict.fromkeys(range(n), exc.message), {}
        ok = np.ones(n, dtype=bool)
        error = np.empty(n, dtype=object)
        if failed:
            rows = np.fromiter(failed, dtype=np.int64, count=len(failed))
            ok[rows] = False
            error[rows] = list(failed.values())
        warnings: list[list[str] | None] = [None] * n
        for i, w in warned.items():
            warnings[i] = w
        return ScriptDecoded(ok, error, data, warnings, self.version)

    def _run(
        self, text: str, bounds: np.ndarray, ports: np.ndarray, times: np.ndarray
    ) -> tuple[list[Any], dict[int, str], dict[int, list[str]]]:
        """(data or None per row, error per failed row, warnings per row that has some)."""
        n = len(bounds) - 1
        lens = np.diff(bounds)
        data: list[Any] = []
        failed: dict[int, str] = {}
        warned: dict[int, list[str]] = {}
        limit_failures = 0

        def take(result: str, lo: int) -> None:
            try:
                chunk, errs, warns = orjson.loads(result)
                if len(chunk) > n - lo or len(errs) % 2 or len(warns) % 2:
                    raise ValueError("results do not match the payloads")
            except (orjson.JSONDecodeError, ValueError, TypeError):
                raise _BadOutput from None
            data.extend(chunk)
            failed.update((lo + i, e) for i, e in zip(errs[::2], errs[1::2], strict=True))
            warned.update((lo + i, w) for i, w in zip(warns[::2], warns[1::2], strict=True))

        def call(lo: int, hi: int) -> None:
            meta = orjson.dumps((lens[lo:hi], ports[lo:hi], times[lo:hi]), option=orjson.OPT_SERIALIZE_NUMPY)
            take(self.engine().run(text[bounds[lo] : bounds[hi]], meta.decode()), lo)

        def alone(i: int) -> bool:
            """Payload i in a call of its own; False when it ran out of a limit there too."""
            try:
                call(i, i + 1)
            except EngineLimit as exc:
                self._drop_engine()
                data.append(None)
                failed[i] = exc.message
                return False
            except _BadOutput:  # the script broke the runner: a fresh engine for the next payload
                self._drop_engine()
                data.append(None)
                failed[i] = "decoder output is not valid JSON"
            return True

        start = 0
        while start < n:
            end = min(n, start + self._chunk)
            try:
                call(start, end)
                start = end
                continue
            except _BadOutput:  # some payload broke the runner's result text: find it one by one
                self._drop_engine()
                for i in range(start, end):
                    limit_failures += not alone(i)
                start = end
            except EngineLimit as exc:
                self._partial(exc, take, start)
                start = len(data)
                # the payload the chunk was on when it ran out: alone, with the whole limit
                if alone(start):
                    self._chunk = max(1, self._chunk // 2)  # only slow: smaller chunks from now on
                else:
                    limit_failures += 1
                start += 1
            if limit_failures >= MAX_LIMIT_FAILURES and start < n:
                reason = f"not decoded: the script ran out of its limits on {limit_failures} payloads of this batch"
                data.extend([None] * (n - start))
                failed.update(dict.fromkeys(range(start, n), reason))
                break
        return data, failed, warned

    def _partial(self, exc: EngineLimit, take: Any, lo: int) -> None:
        """Take the results finished before a limit was hit; a fresh engine after anything but the time limit."""
        try:
            take(self.engine().partial(), lo)
        except (EngineLimit, _BadOutput):
            pass
        if exc.limit != "time":
            self._drop_engine()

    def decode_row(self, f_port: int, payload: bytes) -> dict[str, Any]:
        """One call per message: the script's data object, or ``{"errors": [...]}``."""
        data, failed, _ = self._run(
            payload.decode("latin-1"),
            np.array([0, len(payload)], dtype=np.int64),
            np.array([f_port], dtype=np.int64),
            np.array([time.time() * 1000.0]),
        )
        if failed:
            return {"errors": [failed[0]]}
        obj: dict[str, Any] = data[0]
        return obj

    def domain(self, decoded: Decoded, params: Mapping[str, np.ndarray]) -> dict[str, Column]:
        data = decoded.data if isinstance(decoded, ScriptDecoded) else decoded.objects()
        return self.readings.domain(data, params)
