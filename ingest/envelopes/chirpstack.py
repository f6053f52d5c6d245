"""ChirpStack v4 integration events, JSON marshaler (formats README section 2).

v4.0 omitted default values (``fCnt`` 0, ``dr`` 0, ``fPort`` 0 absent); v4.1+ writes every scalar of the event
but still omits defaults inside ``rxInfo``/``txInfo``. The event type is recognised by the keys present; the
topic's last level (``.../event/up``) decides only when the shape is ambiguous (a v4.0 status with all-zero values).
"""

from __future__ import annotations

import math
from typing import Any

from .fields import (
    U32_MAX,
    b64,
    eui_hex,
    get_dict,
    get_list,
    get_str,
    opt_bool,
    opt_int,
    opt_number,
    uuid_bytes,
    wrong_type,
)
from .keys import derive_key
from .model import LNS_CHIRPSTACK_V4, EnvelopeError, Ignored, Join, LogEvent, Status
from .radio import dr_from_lora
from .sink import Sink, TimeRule

__all__ = ["TIME_RULE", "read_chirpstack_v4"]

LNS = LNS_CHIRPSTACK_V4
TIME_RULE = TimeRule("drift", "time", "rxInfo[].nsTime")
_NAN = math.nan
_STATUS_KEYS = ("margin", "batteryLevel", "batteryLevelUnavailable", "externalPowerSource")
_UPLINK_KEYS = ("rxInfo", "fPort", "data", "fCnt", "txInfo")


def _kind(msg: dict[str, Any], topic: str) -> str:
    if "level" in msg and "code" in msg:
        return "log"
    if "downlinkId" in msg:
        return "txack"
    if "acknowledged" in msg or "queueItemId" in msg:
        return "ack"
    if "integrationName" in msg or "eventType" in msg:
        return "integration"
    for key in _STATUS_KEYS:
        if key in msg:
            return "status"
    for key in _UPLINK_KEYS:
        if key in msg:
            return "up"
    if "location" in msg:
        return "location"
    if "devAddr" in msg:
        return "join"
    return topic.rpartition("/")[2]


def read_chirpstack_v4(i: int, msg: dict[str, Any], topic: str, sink: Sink) -> None:
    info = msg["deviceInfo"]
    if type(info) is not dict:
        raise wrong_type("deviceInfo", "an object", info, LNS)
    raw_eui = info.get("devEui")
    if raw_eui is None:
        raise EnvelopeError("required field missing: deviceInfo.devEui", LNS)
    dev_eui = eui_hex(raw_eui, "deviceInfo.devEui", LNS)
    app_id = get_str(info, "applicationId", "deviceInfo.applicationId", LNS)
    kind = _kind(msg, topic)
    if kind == "up":
        _read_up(i, msg, sink, dev_eui, app_id)
    elif kind == "join":
        when = sink.event_time(LNS, ("time", msg.get("time")))
        session = get_str(msg, "devAddr", "devAddr", LNS)
        sink.joins.append(Join(i, dev_eui.decode(), None, app_id, when, LNS, session))
    elif kind == "status":
        when = sink.event_time(LNS, ("time", msg.get("time")))
        unavailable = opt_bool(msg, "batteryLevelUnavailable", "batteryLevelUnavailable", LNS)
        external = opt_bool(msg, "externalPowerSource", "externalPowerSource", LNS)
        level = opt_number(msg, "batteryLevel", "batteryLevel", LNS)
        margin = opt_number(msg, "margin", "margin", LNS)
        battery = None if unavailable or external else (level or 0.0)
        sink.statuses.append(Status(i, dev_eui.decode(), when, LNS, battery,
                                    None if margin is None else int(margin), external))
    elif kind == "log":
        when = sink.event_time(LNS, ("time", msg.get("time")))
        context = get_dict(msg, "context", "context", LNS) or {}
        sink.logs.append(LogEvent(i, dev_eui.decode(), when, LNS, get_str(msg, "level", "level", LNS) or "INFO",
                                  get_str(msg, "code", "code", LNS) or "", get_str(msg, "description",
                                                                                  "description", LNS) or "",
                                  context))
    elif kind in ("ack", "txack", "location", "integration"):
        sink.ignored.append(Ignored(i, kind, LNS))
    else:
        raise EnvelopeError("unknown ChirpStack v4 event: no uplink, join, status, log or ack fields", LNS)


def _read_up(i: int, msg: dict[str, Any], sink: Sink, dev_eui: bytes, app_id: str | None) -> None:
    f_port = opt_int(msg, "fPort", "fPort", LNS, 255) or 0
    f_cnt = opt_int(msg, "fCnt", "fCnt", LNS, U32_MAX)
    payload = b64(msg.get("data"), "data", LNS)
    dedup = msg.get("deduplicationId")
    t1 = msg.get("time")
    if f_port == 0 or not payload:
        sink.ignored.append(Ignored(i, "no reading", LNS))
        return
    rssi, snr, gateways, gateway_id, ns_time = _rx_info(get_list(msg, "rxInfo", "rxInfo", LNS))
    sf, bandwidth, frequency = _tx_info(get_dict(msg, "txInfo", "txInfo", LNS))
    dr = opt_int(msg, "dr", "dr", LNS, 15)
    if dr is None:
        dr = dr_from_lora(sf, bandwidth, frequency) if sf > 0 else -1
    if dedup is None:
        key = derive_key("chirpstack-v4", dev_eui.decode(), f_cnt or 0, t1 if type(t1) is str else None)
    else:
        key = uuid_bytes(dedup, "deduplicationId", LNS)
    decoded = msg.get("object")
    if type(decoded) is not dict:
        decoded = None
    session = get_str(msg, "devAddr", "devAddr", LNS)
    sink.rows.append((
        i, t1, ns_time, TIME_RULE, dev_eui, None, f_cnt or 0, f_cnt is not None, f_port, payload,
        rssi, snr, gateways, gateway_id, dr, sf, bandwidth, frequency, LNS, key, False, decoded, app_id, session,
    ))


def _rx_info(rx: list[Any] | None) -> tuple[float, float, int, str | None, Any]:
    """Best gateway by RSSI, the count of distinct gateways and the first gateway's ``nsTime``."""
    if not rx:
        return _NAN, _NAN, 0, None, None
    best_rssi = best_snr = _NAN
    best_id: str | None = None
    ns_time = None
    seen: set[str] = set()
    for k, m in enumerate(rx):
        if type(m) is not dict:
            raise wrong_type(f"rxInfo[{k}]", "an object", m, LNS)
        gid = get_str(m, "gatewayId", f"rxInfo[{k}].gatewayId", LNS)
        rssi = opt_number(m, "rssi", f"rxInfo[{k}].rssi", LNS)
        snr = opt_number(m, "snr", f"rxInfo[{k}].snr", LNS)
        if ns_time is None:
            ns_time = m.get("nsTime")
        seen.add(gid if gid else f"#{k}")
        if k == 0 or (rssi is not None and (best_rssi != best_rssi or rssi > best_rssi)):
            best_rssi = _NAN if rssi is None else rssi
            best_snr = _NAN if snr is None else snr
            best_id = gid
    return best_rssi, best_snr, len(seen), best_id, ns_time


def _tx_info(tx: dict[str, Any] | None) -> tuple[int, int, int]:
    """(sf, bandwidth Hz, frequency Hz); -1/0/0 where unknown."""
    if not tx:
        return -1, 0, 0
    frequency = opt_int(tx, "frequency", "txInfo.frequency", LNS, 10**12 - 1) or 0
    modulation = get_dict(tx, "modulation", "txInfo.modulation", LNS)
    lora = get_dict(modulation, "lora", "txInfo.modulation.lora", LNS) if modulation else None
    if not lora:
        return -1, 0, frequency
    sf = opt_int(lora, "spreadingFactor", "txInfo.modulation.lora.spreadingFactor", LNS, 12) or -1
    bandwidth = opt_int(lora, "bandwidth", "txInfo.modulation.lora.bandwidth", LNS, 2_000_000) or 0
    return sf, bandwidth, frequency
