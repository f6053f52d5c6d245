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
    chirpstack_kind_by_keys,
    eui_hex,
    get_dict,
    get_list,
    get_str,
    opt_bool,
    opt_int,
    opt_number,
    port_and_counter,
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
    if "fPort" in msg or "rxInfo" in msg:  # no other event carries these
        return "up"
    if "level" in msg and "code" in msg:
        return "log"
    if "downlinkId" in msg:
        return "txack"
    if "acknowledged" in msg or "queueItemId" in msg:
        return "ack"
    if "integrationName" in msg or "eventType" in msg:
        return "integration"
    return chirpstack_kind_by_keys(msg, _STATUS_KEYS, _UPLINK_KEYS) or topic.rpartition("/")[2]


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
        battery = None if unavailable or external else (level or 0.0)  # v4.0 omitted a level of 0
        sink.statuses.append(
            Status(i, dev_eui.decode(), when, LNS, battery, None if margin is None else int(margin), external)
        )
    elif kind == "log":
        when = sink.event_time(LNS, ("time", msg.get("time")))
        log_level = get_str(msg, "level", "level", LNS) or "INFO"  # enum default INFO is omitted by v4.0
        code = get_str(msg, "code", "code", LNS) or ""
        description = get_str(msg, "description", "description", LNS) or ""
        context = get_dict(msg, "context", "context", LNS) or {}
        sink.logs.append(LogEvent(i, dev_eui.decode(), when, LNS, log_level, code, description, context))
    elif kind in ("ack", "txack", "location", "integration"):
        sink.ignored.append(Ignored(i, kind, LNS))
    else:
        raise EnvelopeError("unknown ChirpStack v4 event: no uplink, join, status, log or ack fields", LNS)


def _read_up(i: int, msg: dict[str, Any], sink: Sink, dev_eui: bytes, app_id: str | None) -> None:
    f_port, f_cnt = msg.get("fPort"), msg.get("fCnt")
    counter_ok = f_cnt is None or (type(f_cnt) is int and 0 <= f_cnt <= U32_MAX)
    if type(f_port) is not int or not 0 < f_port < 256 or not counter_ok:  # checked again, or the error raised
        f_port, f_cnt = port_and_counter(msg, "fPort", "fCnt", "", LNS)
    payload = b64(msg.get("data"), "data", LNS)
    dedup = msg.get("deduplicationId")
    t1 = msg.get("time")
    if f_port == 0 or not payload:
        sink.ignored.append(Ignored(i, "no reading", LNS))
        return
    rx = msg.get("rxInfo")
    if rx is not None and type(rx) is not list:
        get_list(msg, "rxInfo", "rxInfo", LNS)  # raises
    rssi, snr, gateways, gateway_id, ns_time = _rx_info(rx)
    tx = msg.get("txInfo")
    if tx is not None and type(tx) is not dict:
        raise wrong_type("txInfo", "an object", tx, LNS)
    sf, bandwidth, frequency = _tx_info(tx)
    dr = msg.get("dr")
    if type(dr) is not int or not 0 <= dr <= 15:
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
    session = msg.get("devAddr")
    if session is not None and type(session) is not str:
        raise wrong_type("devAddr", "a string", session, LNS)
    sink.rows.append((
        i, t1, ns_time, TIME_RULE, dev_eui, None, f_cnt or 0, f_cnt is not None, f_port, payload,
        rssi, snr, gateways, gateway_id, dr, sf, bandwidth, frequency,
        LNS, key, False, decoded, app_id, session,
    ))  # fmt: skip


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
        gid = m.get("gatewayId")
        rssi = m.get("rssi")
        snr = m.get("snr")
        if (
            (gid is not None and type(gid) is not str)
            or (rssi is not None and type(rssi) is not int and type(rssi) is not float)
            or (snr is not None and type(snr) is not float and type(snr) is not int)
        ):
            get_str(m, "gatewayId", f"rxInfo[{k}].gatewayId", LNS)
            opt_number(m, "rssi", f"rxInfo[{k}].rssi", LNS)
            opt_number(m, "snr", f"rxInfo[{k}].snr", LNS)
        if ns_time is None:
            ns_time = m.get("nsTime")
        seen.add(gid if gid else f"#{k}")
        if k == 0 or (rssi is not None and (best_rssi != best_rssi or rssi > best_rssi)):
            best_rssi = _NAN if rssi is None else float(rssi)
            best_snr = _NAN if snr is None else float(snr)
            best_id = gid
    return best_rssi, best_snr, len(seen), best_id, ns_time


def _tx_info(tx: dict[str, Any] | None) -> tuple[int, int, int]:
    """(sf, bandwidth Hz, frequency Hz); -1/0/0 where unknown."""
    if not tx:
        return -1, 0, 0
    frequency = tx.get("frequency")
    if type(frequency) is not int or not 0 <= frequency < 10**12:
        frequency = opt_int(tx, "frequency", "txInfo.frequency", LNS, 10**12 - 1) or 0
    modulation = tx.get("modulation")
    lora = modulation.get("lora") if type(modulation) is dict else None
    if type(lora) is not dict:
        modulation = get_dict(tx, "modulation", "txInfo.modulation", LNS)
        if modulation:
            get_dict(modulation, "lora", "txInfo.modulation.lora", LNS)
        return -1, 0, frequency
    sf = lora.get("spreadingFactor")
    bandwidth = lora.get("bandwidth")
    if type(sf) is not int or not 5 <= sf <= 12:
        sf = opt_int(lora, "spreadingFactor", "txInfo.modulation.lora.spreadingFactor", LNS, 12) or -1
    if type(bandwidth) is not int or not 0 <= bandwidth <= 2_000_000:
        bandwidth = opt_int(lora, "bandwidth", "txInfo.modulation.lora.bandwidth", LNS, 2_000_000) or 0
    return sf, bandwidth, frequency
