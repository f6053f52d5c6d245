"""The Things Stack v3 (and TTN) ``ApplicationUp`` messages (formats README section 1).

The message type is the one body key present (``uplink_message``, ``join_accept``, ``downlink_*``, ...).
Zero values are omitted by the server: ``f_cnt``/``f_port`` absent mean 0, ``frm_payload`` absent means empty.
Devices are keyed by (application id, device id); the DevEUI is optional.
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
    opt_int,
    opt_number,
    port_and_counter,
    wrong_type,
)
from .keys import key_digest, reception
from .model import LNS_TTS, EnvelopeError, Ignored, Join
from .radio import dr_from_lora
from .sink import Sink, TimeRule

__all__ = ["TIME_RULE", "read_tts"]

LNS = LNS_TTS
TIME_RULE = TimeRule("fallback", "uplink_message.received_at", "received_at")
_NAN = math.nan
# what a gateway reports about one reception (``uplink_message.rx_metadata[]``), for keys without a server time
_RECEPTION_KEYS = ("gateway_ids", "timestamp", "uplink_token", "rssi", "channel_rssi", "snr", "channel_index", "time")
_IGNORED = {
    "uplink_normalized": "uplink_normalized",
    "location_solved": "location_solved",
    "service_data": "service_data",
    "downlink_queue_invalidated": "downlink_queue_invalidated",
}


def read_tts(i: int, msg: dict[str, Any], sink: Sink) -> None:
    ids = msg["end_device_ids"]
    if type(ids) is not dict:
        raise wrong_type("end_device_ids", "an object", ids, LNS)
    device_id = ids.get("device_id")
    if type(device_id) is not str or not device_id:
        raise _missing_or_wrong("end_device_ids.device_id", device_id)
    app_ids = get_dict(ids, "application_ids", "end_device_ids.application_ids", LNS)
    app_id = app_ids.get("application_id") if app_ids is not None else None
    if type(app_id) is not str or not app_id:
        raise _missing_or_wrong("end_device_ids.application_ids.application_id", app_id)
    raw_eui = ids.get("dev_eui")
    dev_eui = b"" if raw_eui is None else eui_hex(raw_eui, "end_device_ids.dev_eui", LNS)

    up = msg.get("uplink_message")
    if up is None:
        _read_other(i, msg, sink, dev_eui, device_id, app_id)
        return
    if type(up) is not dict:
        raise wrong_type("uplink_message", "an object", up, LNS)
    simulated = msg.get("simulated")
    if simulated is None:
        simulated = False
    elif type(simulated) is not bool:
        raise wrong_type("simulated", "a boolean", simulated, LNS)
    if simulated and not sink.store_simulated:
        sink.ignored.append(Ignored(i, "simulated", LNS))
        return

    f_port, f_cnt = up.get("f_port"), up.get("f_cnt")
    counter_ok = f_cnt is None or (type(f_cnt) is int and 0 <= f_cnt <= U32_MAX)
    if type(f_port) is not int or not 0 < f_port < 256 or not counter_ok:  # checked again, or the error raised
        f_port, f_cnt = port_and_counter(up, "f_port", "f_cnt", "uplink_message.", LNS)
    payload = b64(up.get("frm_payload"), "uplink_message.frm_payload", LNS)
    session = up.get("session_key_id")
    if session is not None and type(session) is not str:
        raise wrong_type("uplink_message.session_key_id", "a string", session, LNS)
    received = up.get("received_at")
    received_top = msg.get("received_at")
    if f_port == 0 or not payload:
        sink.ignored.append(Ignored(i, "no reading", LNS))
        return

    rx = up.get("rx_metadata")
    if rx is not None and type(rx) is not list:
        get_list(up, "rx_metadata", "uplink_message.rx_metadata", LNS)  # raises
    rssi, snr, gateways, gateway_id = _rx_metadata(rx)
    dr, sf, bandwidth, frequency = _settings(up)
    decoded = up.get("decoded_payload")
    if type(decoded) is not dict:
        decoded = None
    if simulated:
        if type(received_top) is str:
            key = key_digest("tts-simulated", app_id, device_id, received_top)
        else:
            # without the Application Server's time nothing tells two simulated uplinks apart: the hub's time
            # does, and within one batch their contents
            key = key_digest("tts-simulated", app_id, device_id, sink.hub_iso, f_port, payload.hex())
    elif type(received) is str:
        key = key_digest("tts", app_id, device_id, session, f_cnt or 0, received)
    else:
        # no Network Server time: the frame is what the device sent and what the gateways measured receiving it
        frame = (f_cnt or 0, f_port, payload.hex(), frequency, dr, reception(rx, _RECEPTION_KEYS))
        key = key_digest("tts-frame", app_id, device_id, session, *frame)
    sink.rows.append((
        i, received, received_top, TIME_RULE, dev_eui, device_id, f_cnt or 0, f_cnt is not None, f_port, payload,
        rssi, snr, gateways, gateway_id, dr, sf, bandwidth, frequency,
        LNS, key, simulated, decoded, app_id, session,
    ))  # fmt: skip


def _missing_or_wrong(path: str, value: Any) -> EnvelopeError:
    if value is None or value == "":
        return EnvelopeError(f"required field missing: {path}", LNS)
    return wrong_type(path, "a string", value, LNS)


def _rx_metadata(rx: list[Any] | None) -> tuple[float, float, int, str | None]:
    """Best gateway (highest RSSI; ``channel_rssi`` when ``rssi`` is absent) and the count of distinct gateways.
    TTS lists one entry per antenna per gateway."""
    if not rx:
        return _NAN, _NAN, 0, None
    best_rssi = best_snr = _NAN
    best_id: str | None = None
    seen: set[str] = set()
    for k, m in enumerate(rx):
        if type(m) is not dict:
            raise wrong_type(f"uplink_message.rx_metadata[{k}]", "an object", m, LNS)
        gids = m.get("gateway_ids")
        gid = gids.get("gateway_id") if type(gids) is dict else None
        if gid is not None and type(gid) is not str:
            raise wrong_type(f"uplink_message.rx_metadata[{k}].gateway_ids.gateway_id", "a string", gid, LNS)
        rssi = m.get("rssi")
        if rssi is None:
            rssi = m.get("channel_rssi")
        snr = m.get("snr")
        if (rssi is not None and type(rssi) is not float and type(rssi) is not int) or (
            snr is not None and type(snr) is not float and type(snr) is not int
        ):
            raise _bad_number(f"uplink_message.rx_metadata[{k}]", m)
        seen.add(gid if gid else f"#{k}")
        if k == 0 or (rssi is not None and (best_rssi != best_rssi or rssi > best_rssi)):
            best_rssi = _NAN if rssi is None else float(rssi)
            best_snr = _NAN if snr is None else float(snr)
            best_id = gid
    return best_rssi, best_snr, len(seen), best_id


def _bad_number(path: str, entry: dict[str, Any]) -> EnvelopeError:
    for key in ("rssi", "channel_rssi", "snr"):
        opt_number(entry, key, f"{path}.{key}", LNS)
    return EnvelopeError(f"wrong type in {path}", LNS)  # not reached: opt_number raised


def _settings(up: dict[str, Any]) -> tuple[int, int, int, int]:
    """(dr, sf, bandwidth Hz, frequency Hz) from ``uplink_message.settings``; -1/-1/0/0 where unknown."""
    settings = up.get("settings")
    if settings is None:
        return -1, -1, 0, 0
    if type(settings) is not dict:
        raise wrong_type("uplink_message.settings", "an object", settings, LNS)
    frequency = 0
    freq = settings.get("frequency")
    if freq is not None:
        if type(freq) is str and freq.isdigit() and freq.isascii() and len(freq) <= 12:
            frequency = int(freq)
        elif type(freq) is int and 0 <= freq < 10**12:
            frequency = freq
        else:
            raise wrong_type("uplink_message.settings.frequency", "a decimal string of Hz", freq, LNS)
    sf: Any = -1
    bandwidth: Any = 0
    rate = settings.get("data_rate")
    lora = rate.get("lora") if type(rate) is dict else None
    if type(lora) is dict:
        sf = lora.get("spreading_factor")
        bandwidth = lora.get("bandwidth")
        if sf is None:
            sf = -1
        if bandwidth is None:
            bandwidth = 0
        if (
            type(sf) is not int
            or type(bandwidth) is not int
            or not (5 <= sf <= 12 or sf == -1)
            or not 0 <= bandwidth <= 2_000_000
        ):
            path = "uplink_message.settings.data_rate.lora"
            opt_int(lora, "spreading_factor", f"{path}.spreading_factor", LNS, 12)
            opt_int(lora, "bandwidth", f"{path}.bandwidth", LNS, 2_000_000)
            raise EnvelopeError(f"out of range: {path}.spreading_factor = {sf} is not in 5..12", LNS)
    elif rate is not None:
        if type(rate) is not dict:
            raise wrong_type("uplink_message.settings.data_rate", "an object", rate, LNS)
        if lora is not None:
            raise wrong_type("uplink_message.settings.data_rate.lora", "an object", lora, LNS)
    dr = settings.get("data_rate_index")
    if dr is not None:
        return (
            opt_int(settings, "data_rate_index", "uplink_message.settings.data_rate_index", LNS, 15) or 0,
            sf,
            bandwidth,
            frequency,
        )
    if sf < 0:
        return -1, sf, bandwidth, frequency
    versions = up.get("version_ids")
    band = versions.get("band_id") if type(versions) is dict else None
    return dr_from_lora(sf, bandwidth, frequency, band if type(band) is str else None), sf, bandwidth, frequency


def _read_other(i: int, msg: dict[str, Any], sink: Sink, dev_eui: bytes, device_id: str, app_id: str) -> None:
    join = msg.get("join_accept")
    if join is not None:
        if type(join) is not dict:
            raise wrong_type("join_accept", "an object", join, LNS)
        session = get_str(join, "session_key_id", "join_accept.session_key_id", LNS)
        when = sink.event_time(
            LNS, ("join_accept.received_at", join.get("received_at")), ("received_at", msg.get("received_at"))
        )
        sink.joins.append(Join(i, dev_eui.decode(), device_id, app_id, when, LNS, session))
        return
    for key in msg:
        if key.startswith("downlink_"):
            sink.ignored.append(Ignored(i, key, LNS))
            return
        kind = _IGNORED.get(key)
        if kind is not None:
            sink.ignored.append(Ignored(i, kind, LNS))
            return
    raise EnvelopeError("unknown The Things Stack message: no uplink_message, join_accept or other known body", LNS)
