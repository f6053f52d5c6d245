"""ChirpStack v3 (legacy) Application Server events: ``json_v3`` and Protobuf-JSON marshalers (README section 3).

Both have top-level ``applicationID`` and ``devEUI``. In ``json_v3`` the EUIs are hex and the decoded payload is
``object``; in Protobuf-JSON every ``bytes`` field (``devEUI``, ``gatewayID``, ``uplinkID``) is base64, the decoded
payload is ``objectJSON`` (a string holding JSON) and the LoRa bandwidth is in kHz. Neither has a deduplication id:
the key is derived from DevEUI, frame counter, the gateways' uplink ids and the server or gateway time. A message
with none of these is keyed by the frame and its reception: DevEUI, devAddr, frame counter, payload, frequency,
data rate and what every receiving gateway measured (RSSI, SNR, channel, concentrator counter), so a redelivered
copy gives the same key and a new transmission of the same bytes (a counter repeated after a reset) another.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from . import fields as f
from .keys import key_digest, reception
from .model import LNS_CHIRPSTACK_V3, EnvelopeError, Ignored, Join, LogEvent, Status
from .radio import dr_from_lora, lora_from_dr
from .sink import Sink, TimeRule

__all__ = ["TIME_RULE", "read_chirpstack_v3"]

LNS = LNS_CHIRPSTACK_V3
TIME_RULE = TimeRule("gateway", "publishedAt", "rxInfo[].time")
_NAN = math.nan
_STATUS_KEYS = ("margin", "batteryLevel", "batteryLevelUnavailable", "externalPowerSource", "battery")
_UPLINK_KEYS = ("rxInfo", "fPort", "data", "txInfo", "object", "objectJSON")
# what a gateway reports about one reception (json_v3 and Protobuf-JSON ``rxInfo[]``), for keys without an id
_RECEPTION_KEYS = ("gatewayID", "rssi", "loRaSNR", "channel", "rfChain", "board", "antenna", "context")
# RFC 3339 strings compare by year first: gateway times outside timestamps.VALID_FROM .. VALID_UNTIL identify nothing
_VALID_FROM, _VALID_UNTIL = "2000", "2100"
_TOPIC_KINDS = {
    "rx": "up",
    "up": "up",
    "join": "join",
    "ack": "ack",
    "error": "error",
    "status": "status",
    "location": "location",
    "txack": "txack",
    "integration": "integration",
}


def _kind(msg: dict[str, Any], topic: str) -> str:
    if "acknowledged" in msg:
        return "ack"
    if "error" in msg and "type" in msg:
        return "error"
    return f.chirpstack_kind_by_keys(msg, _STATUS_KEYS, _UPLINK_KEYS) or _TOPIC_KINDS.get(
        topic.rpartition("/")[2], "txack" if "fCnt" in msg else ""
    )


def read_chirpstack_v3(i: int, msg: dict[str, Any], topic: str, sink: Sink) -> None:
    raw_eui = msg["devEUI"]
    if type(raw_eui) is not str:
        raise f.wrong_type("devEUI", "a string", raw_eui, LNS)
    protobuf_json = len(raw_eui) == 12 and raw_eui.endswith("=")  # base64 of 8 bytes; json_v3 has 16 hex digits
    dev_eui = f.eui_from_b64(raw_eui, "devEUI", LNS) if protobuf_json else f.eui_hex(raw_eui, "devEUI", LNS)
    app_id = msg["applicationID"]
    if type(app_id) is int:
        app_id = str(app_id)
    elif type(app_id) is not str:
        raise f.wrong_type("applicationID", "a string", app_id, LNS)
    kind = _kind(msg, topic)
    if kind == "up":
        _read_up(i, msg, sink, dev_eui, app_id, protobuf_json)
        return
    when = sink.event_time(LNS, ("publishedAt", msg.get("publishedAt")))
    eui = dev_eui.decode()
    if kind == "join":
        sink.joins.append(Join(i, eui, None, app_id, when, LNS, f.get_str(msg, "devAddr", "devAddr", LNS)))
    elif kind == "status":
        unavailable = f.opt_bool(msg, "batteryLevelUnavailable", "batteryLevelUnavailable", LNS)
        external = f.opt_bool(msg, "externalPowerSource", "externalPowerSource", LNS)
        level = f.opt_number(msg, "batteryLevel", "batteryLevel", LNS)
        margin = f.opt_number(msg, "margin", "margin", LNS)
        battery = None if unavailable or external or level is None else level
        sink.statuses.append(Status(i, eui, when, LNS, battery, None if margin is None else int(margin), external))
    elif kind == "error":
        code = f.get_str(msg, "type", "type", LNS) or ""
        description = f.get_str(msg, "error", "error", LNS) or ""
        f_cnt = f.opt_int(msg, "fCnt", "fCnt", LNS, f.U32_MAX)
        context = {} if f_cnt is None else {"f_cnt": f_cnt}
        sink.logs.append(LogEvent(i, eui, when, LNS, "ERROR", code, description, context))
    elif kind in ("ack", "txack", "location", "integration"):
        sink.ignored.append(Ignored(i, kind, LNS))
    else:
        raise EnvelopeError("unknown ChirpStack v3 event: no uplink, join, status, error or ack fields", LNS)


def _read_up(i: int, msg: dict[str, Any], sink: Sink, dev_eui: bytes, app_id: str, protobuf_json: bool) -> None:
    f_port, f_cnt = f.port_and_counter(msg, "fPort", "fCnt", "", LNS)
    payload = f.b64(msg.get("data"), "data", LNS)
    if f_port == 0 or not payload:
        sink.ignored.append(Ignored(i, "no reading", LNS))
        return
    published = msg.get("publishedAt")
    rx = f.get_list(msg, "rxInfo", "rxInfo", LNS)
    rssi, snr, gateways, gateway_id, gw_time, uplink_ids = _rx_info(rx, protobuf_json)
    tx = f.get_dict(msg, "txInfo", "txInfo", LNS) or {}
    frequency = f.opt_int(tx, "frequency", "txInfo.frequency", LNS, 10**12 - 1) or 0
    if protobuf_json:
        dr = f.opt_int(msg, "dr", "dr", LNS, 15)
        sf, bandwidth = _modulation(tx)
        if dr is None:
            dr = dr_from_lora(sf, bandwidth, frequency) if sf > 0 else -1
        decoded = _object_json(msg.get("objectJSON"))
    else:
        dr = f.opt_int(tx, "dr", "txInfo.dr", LNS, 15)
        if dr is None:
            dr = -1
            sf, bandwidth = -1, 0
        else:
            sf, bandwidth = lora_from_dr(dr, frequency)
        decoded = msg.get("object")
        if type(decoded) is not dict:
            decoded = None
    anchor = published if type(published) is str else gw_time if type(gw_time) is str else None
    session = f.get_str(msg, "devAddr", "devAddr", LNS)
    if not uplink_ids and (anchor is None or (anchor is gw_time and not _VALID_FROM <= anchor < _VALID_UNTIL)):
        # no id and no time (a gateway without GPS fix may send a constant one, e.g. the GPS epoch): the frame
        # is what the device sent and what the gateways measured receiving it
        key = key_digest(
            "chirpstack-v3-frame",
            dev_eui.decode(),
            session,
            f_cnt,
            payload.hex(),
            frequency,
            dr,
            reception(rx, _RECEPTION_KEYS),
        )
    else:
        key = key_digest("chirpstack-v3", dev_eui.decode(), f_cnt or 0, ",".join(sorted(uplink_ids)), anchor)
    sink.rows.append((
        i, published, gw_time, TIME_RULE, dev_eui, None, f_cnt or 0, f_cnt is not None, f_port, payload,
        rssi, snr, gateways, gateway_id, dr, sf, bandwidth, frequency,
        LNS, key, False, decoded, app_id, session,
    ))  # fmt: skip


def _rx_info(rx: list[Any] | None, protobuf_json: bool) -> tuple[float, float, int, str | None, Any, list[str]]:
    """Best gateway by RSSI, distinct gateways, the first gateway time and every gateway's uplink id."""
    if not rx:
        return _NAN, _NAN, 0, None, None, []
    best_rssi = best_snr = _NAN
    best_id: str | None = None
    gw_time = None
    seen: set[str] = set()
    uplink_ids: list[str] = []
    for k, m in enumerate(rx):
        if type(m) is not dict:
            raise f.wrong_type(f"rxInfo[{k}]", "an object", m, LNS)
        gid = f.get_str(m, "gatewayID", f"rxInfo[{k}].gatewayID", LNS)
        if gid is not None and protobuf_json:
            gid = f.b64(gid, f"rxInfo[{k}].gatewayID", LNS).hex()
        uplink_id = f.get_str(m, "uplinkID", f"rxInfo[{k}].uplinkID", LNS)
        if uplink_id and uplink_id not in ("00000000-0000-0000-0000-000000000000", "AAAAAAAAAAAAAAAAAAAAAA=="):
            uplink_ids.append(uplink_id)
        rssi = f.opt_number(m, "rssi", f"rxInfo[{k}].rssi", LNS)
        snr = f.opt_number(m, "loRaSNR", f"rxInfo[{k}].loRaSNR", LNS)
        if gw_time is None:
            gw_time = m.get("time")
        seen.add(gid if gid else f"#{k}")
        if k == 0 or (rssi is not None and (best_rssi != best_rssi or rssi > best_rssi)):
            best_rssi = _NAN if rssi is None else rssi
            best_snr = _NAN if snr is None else snr
            best_id = gid
    return best_rssi, best_snr, len(seen), best_id, gw_time, uplink_ids


def _modulation(tx: dict[str, Any]) -> tuple[int, int]:
    """(sf, bandwidth Hz) of Protobuf-JSON ``txInfo.loRaModulationInfo`` (bandwidth in kHz there)."""
    lora = f.get_dict(tx, "loRaModulationInfo", "txInfo.loRaModulationInfo", LNS)
    if not lora:
        return -1, 0
    sf = f.opt_int(lora, "spreadingFactor", "txInfo.loRaModulationInfo.spreadingFactor", LNS, 12) or -1
    khz = f.opt_int(lora, "bandwidth", "txInfo.loRaModulationInfo.bandwidth", LNS, 2000) or 0
    return sf, khz * 1000


def _object_json(value: Any) -> dict[str, Any] | None:
    """The decoded payload of Protobuf-JSON: a JSON document inside a string (``""`` when there is none)."""
    if type(value) is not str or not value:
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if type(decoded) is dict else None
