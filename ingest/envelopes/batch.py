"""``parse_batch``: n MQTT messages -> one :class:`EnvelopeBatch` of uplink columns plus side events.

Per message: a size check, ``orjson.loads``, dialect detection by the keys present (formats README section 4) and
a handful of dict lookups in the dialect's reader. Timestamps, numbers and payload bytes are then turned into
numpy columns for the whole batch at once. Nothing a sender can put in a message escapes as an exception: each
unusable message becomes a :class:`Reject` with its reason.
"""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from .chirpstack import read_chirpstack_v4
from .chirpstack_v3 import read_chirpstack_v3
from .fields import type_name
from .hub_clock import hub_clock_offsets
from .keys import mark_uuid8
from .model import LNS_CHIRPSTACK_V4, EnvelopeBatch, EnvelopeError, Reject
from .sink import INDEX, LNS, ROW_FIELDS, RSSI, RULE, SNR, T1, T2, Sink, TimeRule
from .timestamps import BAD, MISSING, OK, OUT_OF_RANGE, datetime64_from_epoch, parse_times
from .topics import lns_of_topic
from .tts import read_tts

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "parse_batch"]

DEFAULT_MAX_MESSAGE_BYTES = 65536
#: RSSI and SNR beyond this magnitude (dB) are garbage, not radio measurements.
MAX_RADIO_DB = 1000.0
_LOADS = orjson.loads
_DECODE_ERROR = orjson.JSONDecodeError


def _read_message(i: int, topic: str, msg: dict[str, Any], sink: Sink) -> None:
    """Detect the dialect from the message's keys and hand it to its reader."""
    if "end_device_ids" in msg:
        read_tts(i, msg, sink)
    elif "deviceInfo" in msg:
        read_chirpstack_v4(i, msg, topic, sink)
    elif "devEUI" in msg and "applicationID" in msg:
        read_chirpstack_v3(i, msg, topic, sink)
    elif "payload_raw" in msg or "dev_id" in msg:
        raise EnvelopeError("TTN V2 message (payload_raw/dev_id): the legacy TTN V2 format is not supported")
    else:
        keys = ", ".join(sorted(str(k)[:40] for k in msg)[:8])
        raise EnvelopeError(f"unknown message format: no end_device_ids, deviceInfo or devEUI (keys: {keys})")


def _not_json_reason(raw: bytes, error: Exception) -> str:
    head = bytes(raw[:256])
    if head.lstrip()[:1] in (b"{", b"[", b'"'):  # broken JSON, not another encoding
        return f"not JSON: {str(error)[:120]}"
    binary = any(b < 0x20 and b not in b"\t\n\r" for b in head)
    if not binary:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as e:
            binary = e.start < len(head) - 3  # a character cut at the end of the window is not proof
    hint = " (binary payload: Protobuf? configure the network server's MQTT integration for JSON)" if binary else ""
    return f"not JSON: {str(error)[:120]}{hint}"


def parse_batch(
    topics: Sequence[str],
    payloads: Sequence[bytes],
    hub_time: float | None = None,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    store_simulated: bool = False,
) -> EnvelopeBatch:
    """Parse n MQTT messages (``topics[i]``, ``payloads[i]``) received at ``hub_time`` (POSIX seconds; now if None).

    Accepted uplinks become the columns of the returned :class:`EnvelopeBatch`; joins, statuses and logs its side
    event lists; messages that are not readings its ``ignored``; unusable ones its ``rejects``. Every input index
    appears exactly once in one of ``index``, ``joins``, ``statuses``, ``logs``, ``ignored`` or ``rejects``.
    """
    hub = _time.time() if hub_time is None else float(hub_time)
    hub_iso = datetime.fromtimestamp(hub, UTC).isoformat()
    sink = Sink(hub, hub_iso, store_simulated)
    rejects: list[Reject] = []
    for i, raw in enumerate(payloads):
        try:
            size = len(raw)
            if size > max_message_bytes:
                rejects.append(Reject(i, "size", f"message of {size} bytes exceeds the limit of {max_message_bytes}"))
                continue
            try:
                msg = _LOADS(raw)
            except _DECODE_ERROR as e:
                rejects.append(Reject(i, "envelope", _not_json_reason(raw, e)))
                continue
            if type(msg) is not dict:
                rejects.append(Reject(i, "envelope", f"envelope is {type_name(msg)}, expected a JSON object"))
                continue
            _read_message(i, topics[i] if i < len(topics) else "", msg, sink)
        except EnvelopeError as e:
            rejects.append(Reject(i, "envelope", e.reason, e.lns))
        except Exception as e:  # a message must never stop the batch; the reason names the defect
            rejects.append(Reject(i, "envelope", f"internal error: {type(e).__name__}: {str(e)[:200]}"))
    for k, r in enumerate(rejects):  # a message whose body did not say which server sent it: its topic may
        if r.lns is None and r.index < len(topics):
            rejects[k] = replace(r, lns=lns_of_topic(topics[r.index]))
    rows = sink.rows
    batch = _finish(rows, hub, rejects) if rows else EnvelopeBatch()
    rejects.sort(key=lambda r: r.index)
    batch.joins, batch.statuses, batch.logs, batch.ignored = sink.joins, sink.statuses, sink.logs, sink.ignored
    batch.rejects = rejects
    return batch


def _finish(rows: list[tuple[Any, ...]], hub: float, rejects: list[Reject]) -> EnvelopeBatch:
    """Columns of the collected uplink rows, after rejecting those whose time or radio values are unusable."""
    times, by_hub, bad = _resolve_times(rows, hub)
    rssi = np.array([row[RSSI] for row in rows], dtype=np.float64)
    snr = np.array([row[SNR] for row in rows], dtype=np.float64)
    wild = ~(np.isnan(rssi) | (np.abs(rssi) <= MAX_RADIO_DB)) | ~(np.isnan(snr) | (np.abs(snr) <= MAX_RADIO_DB))
    if wild.any():
        known = {r.index for r in bad}
        bad.extend(
            Reject(rows[k][INDEX], "envelope", f"out of range: rssi/snr beyond +-{MAX_RADIO_DB:g} dB", rows[k][LNS])
            for k in np.flatnonzero(wild).tolist()
            if rows[k][INDEX] not in known
        )
    if bad:
        rejects.extend(bad)
        drop = {r.index for r in bad}
        keep = [k for k, row in enumerate(rows) if row[INDEX] not in drop]
        if not keep:
            return EnvelopeBatch()
        rows = [rows[k] for k in keep]
        times, by_hub, rssi, snr = times[keep], by_hub[keep], rssi[keep], snr[keep]
    return _columns(rows, times, by_hub, rssi, snr)


def _resolve_times(
    rows: list[tuple[Any, ...]], hub: float
) -> tuple[npt.NDArray[np.datetime64], npt.NDArray[np.bool_], list[Reject]]:
    """Reading time of every row from its candidates ``t1``/``t2`` and its :class:`TimeRule`, and which rows have
    neither (their time is the hub's, made distinct per uplink in :func:`_columns`)."""
    rules: list[TimeRule] = [row[RULE] for row in rows]
    kind = np.array([rule.kind for rule in rules])
    drift = kind == "drift"
    t1, s1 = parse_times([row[T1] for row in rows])
    # The second candidate matters only where the first is not usable or is checked against it.
    need = np.flatnonzero((s1 != OK) | drift).tolist()
    t2 = np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[us]")
    s2 = np.full(len(rows), MISSING, dtype=np.uint8)
    # ChirpStack's ``time`` is often the NS time itself: an identical string needs no second parse.
    same = [k for k in need if type(rows[k][T2]) is str and rows[k][T2] == rows[k][T1]]
    if same:
        t2[same], s2[same] = t1[same], s1[same]
    other = [
        k for k in need if rows[k][T2] is not None and not (type(rows[k][T2]) is str and rows[k][T2] == rows[k][T1])
    ]
    if other:
        t2[other], s2[other] = parse_times([rows[k][T2] for k in other])
    a_ok, b_ok = s1 == OK, s2 == OK
    a_out, b_out = s1 == OUT_OF_RANGE, s2 == OUT_OF_RANGE
    out = np.where(a_ok, t1, np.where(b_ok, t2, datetime64_from_epoch(hub)))
    if drift.any():
        limit = np.array([rule.max_drift_s * 1e6 for rule in rules])
        gap = np.abs((t1 - t2).astype(np.int64))
        use_t2 = drift & b_ok & ((a_ok & (gap > limit)) | a_out)
        out[use_t2] = t2[use_t2]
    problem = (s1 == BAD) | (s2 == BAD)
    problem |= (kind == "fallback") & (a_out | ((s1 == MISSING) & b_out))
    problem |= drift & a_out & ~b_ok
    problem |= (kind == "gateway") & a_out
    bad: list[Reject] = []
    for k in np.flatnonzero(problem).tolist():
        rule = rules[k]
        if s1[k] == BAD:
            reason = f"bad timestamp: {rule.t1_name} is not an RFC 3339 time with offset"
        elif s2[k] == BAD:
            reason = f"bad timestamp: {rule.t2_name} is not an RFC 3339 time with offset"
        else:
            reason = f"timestamp out of range: {rule.t1_name if a_out[k] else rule.t2_name}"
        bad.append(Reject(rows[k][INDEX], "envelope", reason, rows[k][LNS]))
    return out, ~(a_ok | b_ok), bad


def _object_column(values: Sequence[Any]) -> npt.NDArray[np.object_]:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _columns(
    rows: list[tuple[Any, ...]],
    times: npt.NDArray[np.datetime64],
    by_hub: npt.NDArray[np.bool_],
    rssi: npt.NDArray[np.float64],
    snr: npt.NDArray[np.float64],
) -> EnvelopeBatch:
    n = len(rows)
    col = dict(zip(ROW_FIELDS, zip(*rows, strict=True), strict=True))
    payload = col["payload"]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(p) for p in payload], out=offsets[1:])
    lns_column = _object_column(col["lns"])
    keys = np.frombuffer(bytearray(b"".join(col["dedup_key"])), dtype=np.uint8).reshape(n, 16)
    mark_uuid8(keys, lns_column != LNS_CHIRPSTACK_V4)  # readers of TTS and ChirpStack v3 give raw key digests
    dev_eui_column = np.array(col["dev_eui"], dtype="S16")
    device_id_column = _object_column(col["lns_device_id"])
    if by_hub.any():
        hub_rows = np.flatnonzero(by_hub)
        offsets_us = hub_clock_offsets(dev_eui_column[hub_rows], device_id_column[hub_rows], keys[hub_rows])
        times = times.astype("datetime64[us]")  # a copy: the hub rows' times are shifted in place
        times[hub_rows] += offsets_us.astype("timedelta64[us]")
    return EnvelopeBatch(
        index=np.array(col["index"], dtype=np.int64),
        time=times.astype("datetime64[us]"),
        hub_clock=by_hub,
        dev_eui=dev_eui_column,
        lns_device_id=device_id_column,
        f_cnt=np.array(col["f_cnt"], dtype=np.int64),
        f_cnt_present=np.array(col["f_cnt_present"], dtype=np.bool_),
        f_port=np.array(col["f_port"], dtype=np.int16),
        buf=np.frombuffer(bytearray(b"".join(payload)), dtype=np.uint8),
        offsets=offsets,
        rssi=rssi.astype(np.float32),
        snr=snr.astype(np.float32),
        gateways=np.array(col["gateways"], dtype=np.int64).clip(0, 32767).astype(np.int16),
        gateway_id=_object_column(col["gateway_id"]),
        dr=np.array(col["dr"], dtype=np.int16),
        sf=np.array(col["sf"], dtype=np.int16),
        bandwidth=np.array(col["bandwidth"], dtype=np.int32),
        frequency=np.array(col["frequency"], dtype=np.int64),
        lns=lns_column,
        dedup_key=keys,
        simulated=np.array(col["simulated"], dtype=np.bool_),
        decoded=_object_column(col["decoded"]),
        app_id=_object_column(col["app_id"]),
        session=_object_column(col["session"]),
    )
