"""What :func:`ingest.envelopes.parse_batch` returns: the uplink columns and the rare side events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["EnvelopeBatch", "EnvelopeError", "Ignored", "Join", "LogEvent", "Reject", "Status"]
__all__ += ["LNS_CHIRPSTACK_V3", "LNS_CHIRPSTACK_V4", "LNS_TTS"]  # the network servers' ids

LNS_TTS = "tts"
LNS_CHIRPSTACK_V4 = "chirpstack-v4"
LNS_CHIRPSTACK_V3 = "chirpstack-v3"

Stage = Literal["size", "envelope"]


class EnvelopeError(Exception):
    """A message that cannot be read as an envelope; ``reason`` is what lands in ``dead_letters.reason``.

    Raised inside the per-format readers and turned into a :class:`Reject` by ``parse_batch``; it never
    leaves ``parse_batch``. ``lns`` names the dialect when it was recognised.
    """

    def __init__(self, reason: str, lns: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.lns = lns


@dataclass(frozen=True, slots=True)
class Reject:
    """A dead letter: the input at ``index`` could not be used (``stage`` 'size' or 'envelope').

    Unpacks like the tuple ``(index, stage, reason)``; ``lns`` names the dialect when it was recognised.
    """

    index: int
    stage: str
    reason: str
    lns: str | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.index, self.stage, self.reason))


@dataclass(frozen=True, slots=True)
class Ignored:
    """A recognised message that is not a reading (downlink ack, txack, location, MAC-only uplink, ...)."""

    index: int
    kind: str
    lns: str


@dataclass(frozen=True, slots=True)
class Join:
    """A device (re)joined: a new session, the frame counter restarts at 0.

    ``dev_eui`` is lower-case hex or ``""`` (TTS without DevEUI; then ``lns_device_id`` names the device).
    """

    index: int
    dev_eui: str
    lns_device_id: str | None
    app_id: str | None
    time: datetime
    lns: str
    session: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """ChirpStack device status (answer to DevStatusReq). ``battery_pct`` is None when the device cannot measure
    it (``batteryLevelUnavailable``) or runs on external power."""

    index: int
    dev_eui: str
    time: datetime
    lns: str
    battery_pct: float | None
    margin: int | None
    external_power: bool


@dataclass(frozen=True, slots=True)
class LogEvent:
    """ChirpStack log / v3 error event (``UPLINK_F_CNT_RESET``, ``UPLINK_CODEC``, ...)."""

    index: int
    dev_eui: str
    time: datetime
    lns: str
    level: str
    code: str
    description: str
    context: dict[str, Any] = field(default_factory=dict)


def _empty(dtype: Any, shape: tuple[int, ...] = (0,)) -> Any:
    return np.zeros(shape, dtype=dtype)


@dataclass
class EnvelopeBatch:
    """The accepted uplinks of one batch as columns (row i of every column is the same uplink), plus side events.

    Columns (n = number of accepted uplinks):

    ========================  =====================  ===================================================
    ``index``                 int64                  position of the uplink in the ``parse_batch`` inputs
    ``time``                  datetime64[us]         reading time, UTC (network server receive time)
    ``hub_clock``             bool                   no time in the message: ``time`` is the hub's receive
                                                     time plus k µs for the k-th uplink of its device in the
                                                     batch (:mod:`ingest.envelopes.hub_clock`)
    ``dev_eui``               S16                    lower-case hex; ``b""`` for TTS devices without DevEUI
    ``lns_device_id``         object (str | None)    TTS ``end_device_ids.device_id``; None for ChirpStack
    ``f_cnt``                 int64                  frame counter (0 when the server omitted it)
    ``f_cnt_present``         bool                   False when ``f_cnt`` was absent in the message
    ``f_port``                int16                  1..255 (fPort 0 is never a reading)
    ``buf``, ``offsets``      uint8, int64 (n + 1)   raw payload i is ``buf[offsets[i]:offsets[i + 1]]``
    ``rssi``, ``snr``         float32                best gateway (highest RSSI); NaN without gateways
    ``gateways``              int16                  distinct receiving gateways
    ``gateway_id``            object (str | None)    best gateway's id
    ``dr``                    int16                  data rate index, -1 if unknown
    ``sf``                    int16                  LoRa spreading factor, -1 if unknown (FSK, ...)
    ``bandwidth``             int32                  Hz, 0 if unknown
    ``frequency``             int64                  Hz, 0 if unknown
    ``lns``                   object (str)           'tts' | 'chirpstack-v4' | 'chirpstack-v3'
    ``dedup_key``             uint8 (n, 16)          UUID bytes: the same uplink always gives the same key
    ``simulated``             bool                   TTS simulated uplink (only with ``store_simulated``)
    ``decoded``               object (dict | None)   the network server's decoded payload object
    ``app_id``                object (str | None)    TTS application id, ChirpStack application id
    ``session``               object (str | None)    TTS session_key_id, ChirpStack devAddr (changes on join)
    ========================  =====================  ===================================================
    """

    index: npt.NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    time: npt.NDArray[np.datetime64] = field(default_factory=lambda: _empty("datetime64[us]"))
    hub_clock: npt.NDArray[np.bool_] = field(default_factory=lambda: _empty(np.bool_))
    dev_eui: npt.NDArray[np.bytes_] = field(default_factory=lambda: _empty("S16"))
    lns_device_id: npt.NDArray[np.object_] = field(default_factory=lambda: _empty(object))
    f_cnt: npt.NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    f_cnt_present: npt.NDArray[np.bool_] = field(default_factory=lambda: _empty(np.bool_))
    f_port: npt.NDArray[np.int16] = field(default_factory=lambda: _empty(np.int16))
    buf: npt.NDArray[np.uint8] = field(default_factory=lambda: _empty(np.uint8))
    offsets: npt.NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64, (1,)))
    rssi: npt.NDArray[np.float32] = field(default_factory=lambda: _empty(np.float32))
    snr: npt.NDArray[np.float32] = field(default_factory=lambda: _empty(np.float32))
    gateways: npt.NDArray[np.int16] = field(default_factory=lambda: _empty(np.int16))
    gateway_id: npt.NDArray[np.object_] = field(default_factory=lambda: _empty(object))
    dr: npt.NDArray[np.int16] = field(default_factory=lambda: _empty(np.int16))
    sf: npt.NDArray[np.int16] = field(default_factory=lambda: _empty(np.int16))
    bandwidth: npt.NDArray[np.int32] = field(default_factory=lambda: _empty(np.int32))
    frequency: npt.NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    lns: npt.NDArray[np.object_] = field(default_factory=lambda: _empty(object))
    dedup_key: npt.NDArray[np.uint8] = field(default_factory=lambda: _empty(np.uint8, (0, 16)))
    simulated: npt.NDArray[np.bool_] = field(default_factory=lambda: _empty(np.bool_))
    decoded: npt.NDArray[np.object_] = field(default_factory=lambda: _empty(object))
    app_id: npt.NDArray[np.object_] = field(default_factory=lambda: _empty(object))
    session: npt.NDArray[np.object_] = field(default_factory=lambda: _empty(object))
    joins: list[Join] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    logs: list[LogEvent] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def select(self, rows: npt.ArrayLike) -> EnvelopeBatch:
        """The uplink rows ``rows`` (indices or a boolean mask) as a new batch with its own ``buf``/``offsets``;
        side events stay with this batch."""
        take = np.asarray(rows)
        if take.dtype == np.bool_:
            take = np.flatnonzero(take)
        take = take.astype(np.int64, copy=False)
        starts = self.offsets[take]
        lengths = self.offsets[take + 1] - starts
        offsets = np.zeros(len(take) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
        columns = {name: getattr(self, name)[take] for name in _ROW_COLUMNS}
        return EnvelopeBatch(buf=self.buf[gather], offsets=offsets, **columns)

    def payload(self, i: int) -> bytes:
        """Raw payload bytes of uplink row ``i``."""
        return self.buf[self.offsets[i] : self.offsets[i + 1]].tobytes()

    def dedup_uuid(self, i: int) -> uuid.UUID:
        """``dedup_key`` of uplink row ``i`` as a :class:`uuid.UUID`."""
        return uuid.UUID(bytes=self.dedup_key[i].tobytes())

    def row(self, i: int) -> dict[str, Any]:
        """Uplink row ``i`` as a dict of Python values (for logs, tests and dead letters; not for the hot path)."""
        return {
            "index": int(self.index[i]),
            "time": self.time[i].item(),
            "hub_clock": bool(self.hub_clock[i]),
            "dev_eui": self.dev_eui[i].decode(),
            "lns_device_id": self.lns_device_id[i],
            "f_cnt": int(self.f_cnt[i]),
            "f_cnt_present": bool(self.f_cnt_present[i]),
            "f_port": int(self.f_port[i]),
            "payload": self.payload(i),
            "rssi": float(self.rssi[i]),
            "snr": float(self.snr[i]),
            "gateways": int(self.gateways[i]),
            "gateway_id": self.gateway_id[i],
            "dr": int(self.dr[i]),
            "sf": int(self.sf[i]),
            "bandwidth": int(self.bandwidth[i]),
            "frequency": int(self.frequency[i]),
            "lns": self.lns[i],
            "dedup_key": self.dedup_uuid(i),
            "simulated": bool(self.simulated[i]),
            "decoded": self.decoded[i],
            "app_id": self.app_id[i],
            "session": self.session[i],
        }


#: the per-row columns of :class:`EnvelopeBatch` (``buf`` and ``offsets`` hold the payloads; lists are side events)
_ROW_COLUMNS = tuple(
    f.name for f in fields(EnvelopeBatch) if str(f.type).startswith("npt.NDArray") and f.name not in ("buf", "offsets")
)
