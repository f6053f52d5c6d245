"""Build network-server messages exactly as The Things Stack v3 and ChirpStack v4 publish them (pure functions).

For the simulator and tests. Each builder returns the JSON object as a dict (serialise with ``orjson.dumps``);
the shapes follow ``shared/lns-formats`` (README sections 1.3 and 2.3/2.4, and the samples):

* TTS: snake_case, zero values omitted (``f_cnt`` 0, ``f_port`` 0, empty payload are absent), EUIs upper-case,
  ``frequency`` a decimal string, timestamps ``Z`` with 9 fraction digits, one ``rx_metadata`` entry per gateway.
* ChirpStack v4 (4.1+): lowerCamelCase, every scalar of the event present (``fCnt: 0``, ``confirmed: false``),
  defaults omitted inside ``rxInfo``/``txInfo``, EUIs lower-case, timestamps ``+00:00`` with 0/3/6/9 fraction digits.

Identifiers the servers generate (correlation ids, deduplication ids, session keys, uplink tokens) are derived
deterministically from the arguments, so the same arguments give byte-identical messages.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

import orjson

from stadtpuls.ingest.envelopes.radio import lora_from_dr

__all__ = [
    "Gateway",
    "chirpstack_join",
    "chirpstack_topic",
    "chirpstack_uplink",
    "rfc3339_chirpstack",
    "rfc3339_tts",
    "tts_join",
    "tts_topic",
    "tts_uplink",
]

#: A receiving gateway: (gateway id, RSSI dBm, SNR dB). TTS ids look like ``eui-0016c001f153a14c``;
#: ChirpStack ids are the 16-hex-digit gateway EUI.
Gateway = tuple[str, float, float]

_DEFAULT_GATEWAY: Gateway = ("0016c001f153a14c", -85.0, 7.5)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _digest(size: int, *parts: Any) -> bytes:
    return blake2b(orjson.dumps(parts, default=str), digest_size=size, person=b"stadtpuls.build").digest()


def _ulid(when: datetime, *parts: Any) -> str:
    """A ULID (48-bit ms time + 80 bits) whose random part is derived from ``parts``."""
    n = (int(when.timestamp() * 1000) << 80) | int.from_bytes(_digest(10, *parts), "big")
    return "".join(_CROCKFORD[(n >> shift) & 31] for shift in range(125, -1, -5))


def _uuid(*parts: Any) -> str:
    b = bytearray(_digest(16, *parts))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC)


def rfc3339_tts(when: datetime) -> str:
    """TTS form: ``2020-02-12T15:15:45.789585559Z`` (9 fraction digits; microsecond datetimes end in 000)."""
    t = _utc(when)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}000Z"


def rfc3339_chirpstack(when: datetime) -> str:
    """ChirpStack v4 form (chrono ``to_rfc3339``): ``+00:00``, fraction digits 0, 3 or 6 (9 for nanoseconds)."""
    t = _utc(when)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    us = t.microsecond
    if us == 0:
        frac = ""
    elif us % 1000 == 0:
        frac = f".{us // 1000:03d}"
    else:
        frac = f".{us:06d}"
    return f"{base}{frac}+00:00"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tts_topic(app_id: str, device_id: str, event: str = "up", tenant: str | None = None) -> str:
    """``v3/{app}[@{tenant}]/devices/{device_id}/{event}``."""
    app = f"{app_id}@{tenant}" if tenant else app_id
    return f"v3/{app}/devices/{device_id}/{event}"


def chirpstack_topic(application_id: str, dev_eui: str, event: str = "up") -> str:
    """ChirpStack's default event topic ``application/{application_id}/device/{dev_eui}/event/{event}``."""
    return f"application/{application_id}/device/{dev_eui.lower()}/event/{event}"


def _tts_ids(
    device_id: str, app_id: str, dev_eui: str | None, join_eui: str | None, dev_addr: str | None
) -> dict[str, Any]:
    ids: dict[str, Any] = {"device_id": device_id, "application_ids": {"application_id": app_id}}
    if dev_eui:
        ids["dev_eui"] = dev_eui.upper()
    if join_eui:
        ids["join_eui"] = join_eui.upper()
    if dev_addr:
        ids["dev_addr"] = dev_addr.upper()
    return ids


def tts_uplink(
    *,
    device_id: str,
    app_id: str,
    received_at: datetime,
    f_port: int,
    payload: bytes,
    f_cnt: int = 0,
    dev_eui: str | None = None,
    session_key_id: str | None = None,
    dev_addr: str | None = None,
    join_eui: str | None = None,
    gateways: Sequence[Gateway] = (("eui-0016c001f153a14c", -85.0, 7.5),),
    dr: int = 5,
    frequency: int = 868_100_000,
    decoded: dict[str, Any] | None = None,
    confirmed: bool = False,
    simulated: bool = False,
) -> dict[str, Any]:
    """A TTS ``ApplicationUp`` with ``uplink_message`` (MQTT topic ``.../up``).

    ``received_at`` is the Network Server's receive time (the hub's reading time); the gateways saw the frame
    20 ms earlier and the Application Server's ``received_at`` is 15 ms later. ``session_key_id`` defaults to one
    derived from the device (stable until the caller passes a new one after a join). A simulated uplink has no
    ``f_cnt``, session or NS ``received_at``, as TTS sends it.
    """
    ns = _utc(received_at)
    gw_time = ns - timedelta(milliseconds=20)
    sf, bandwidth = lora_from_dr(dr, frequency)
    if session_key_id is None:
        session_key_id = _b64(_digest(16, "session", app_id, device_id))
    up: dict[str, Any] = {}
    if not simulated:
        up["session_key_id"] = session_key_id
    if f_port:
        up["f_port"] = f_port
    if f_cnt and not simulated:
        up["f_cnt"] = f_cnt
    if payload:
        up["frm_payload"] = _b64(payload)
    if decoded is not None:
        up["decoded_payload"] = decoded
    rx = []
    for gateway_id, rssi, snr in gateways:
        entry: dict[str, Any] = {"gateway_ids": {"gateway_id": gateway_id}}
        if gateway_id.startswith("eui-"):
            entry["gateway_ids"]["eui"] = gateway_id[4:].upper()
        entry.update(
            {
                "time": rfc3339_tts(gw_time),
                "timestamp": int(gw_time.timestamp() * 1e6) % 2**32,
                "rssi": rssi,
                "channel_rssi": rssi,
            }
        )
        if snr:
            entry["snr"] = snr
        entry["received_at"] = rfc3339_tts(gw_time + timedelta(milliseconds=8))
        rx.append(entry)
    if rx:
        up["rx_metadata"] = rx
    lora: dict[str, Any] = {}
    if bandwidth:
        lora["bandwidth"] = bandwidth
    if sf > 0:
        lora["spreading_factor"] = sf
        lora["coding_rate"] = "4/5"
    up["settings"] = {
        "data_rate": {"lora": lora} if lora else {},
        "frequency": str(frequency),
        "time": rfc3339_tts(gw_time),
    }
    if not simulated:
        up["received_at"] = rfc3339_tts(ns)
    if confirmed:
        up["confirmed"] = True
    msg: dict[str, Any] = {
        "end_device_ids": _tts_ids(device_id, app_id, dev_eui, join_eui, dev_addr),
        "correlation_ids": [
            f"as:up:{_ulid(ns, 'as', app_id, device_id, f_cnt)}",
            f"ns:uplink:{_ulid(ns, 'ns', app_id, device_id, f_cnt)}",
        ],
        "received_at": rfc3339_tts(ns + timedelta(milliseconds=15)),
        "uplink_message": up,
    }
    if simulated:
        msg["simulated"] = True
    return msg


def tts_join(
    *,
    device_id: str,
    app_id: str,
    received_at: datetime,
    session_key_id: str,
    dev_eui: str | None = None,
    join_eui: str | None = None,
    dev_addr: str | None = None,
) -> dict[str, Any]:
    """A TTS ``ApplicationUp`` with ``join_accept`` (topic ``.../join``); pass the new session's key id."""
    ns = _utc(received_at)
    return {
        "end_device_ids": _tts_ids(device_id, app_id, dev_eui, join_eui, dev_addr),
        "correlation_ids": [f"as:up:{_ulid(ns, 'join', app_id, device_id, session_key_id)}"],
        "received_at": rfc3339_tts(ns + timedelta(milliseconds=15)),
        "join_accept": {"session_key_id": session_key_id, "received_at": rfc3339_tts(ns)},
    }


def _device_info(
    dev_eui: str, application_id: str, device_name: str | None, tenant_id: str, tags: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "tenantId": tenant_id,
        "tenantName": "stadtpuls",
        "applicationId": application_id,
        "applicationName": "stadtpuls",
        "deviceProfileId": _uuid("profile", application_id),
        "deviceProfileName": "default",
        "deviceName": device_name or dev_eui.lower(),
        "devEui": dev_eui.lower(),
        "deviceClassEnabled": "CLASS_A",
        "tags": dict(tags or {}),
    }


def chirpstack_uplink(
    *,
    dev_eui: str,
    application_id: str,
    time: datetime,
    f_port: int,
    payload: bytes,
    f_cnt: int = 0,
    dev_addr: str | None = None,
    deduplication_id: str | None = None,
    gateways: Sequence[Gateway] = (_DEFAULT_GATEWAY,),
    dr: int = 5,
    frequency: int = 868_100_000,
    decoded: dict[str, Any] | None = None,
    confirmed: bool = False,
    device_name: str | None = None,
    tenant_id: str = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ChirpStack v4 ``UplinkEvent`` (topic ``.../event/up``), as v4.11+ writes it.

    ``deduplication_id`` defaults to a UUID derived from (DevEUI, fCnt, time): distinct uplinks get distinct ids,
    and calling again with the same arguments (a duplicate delivery) gives the same id. ``decoded`` becomes
    ``object`` (numbers as the caller gives them; ChirpStack itself writes floats).
    """
    t = _utc(time)
    sf, bandwidth = lora_from_dr(dr, frequency)
    dedup = deduplication_id or _uuid("dedup", dev_eui.lower(), f_cnt, rfc3339_chirpstack(t))
    msg: dict[str, Any] = {
        "deduplicationId": dedup,
        "time": rfc3339_chirpstack(t),
        "deviceInfo": _device_info(dev_eui, application_id, device_name, tenant_id, tags),
        "devAddr": (dev_addr or _digest(4, "devaddr", dev_eui.lower()).hex()).lower(),
        "adr": True,
        "dr": dr,
        "fCnt": f_cnt,
        "fPort": f_port,
        "confirmed": confirmed,
        "data": _b64(payload),
    }
    if decoded is not None:
        msg["object"] = decoded
    rx = []
    for k, (gateway_id, rssi, snr) in enumerate(gateways):
        entry: dict[str, Any] = {
            "gatewayId": gateway_id.lower(),
            "uplinkId": int.from_bytes(_digest(4, "uplink", dedup, k), "big"),
            "nsTime": rfc3339_chirpstack(t),
            "rssi": int(round(rssi)),
        }
        if snr:
            entry["snr"] = snr
        entry.update({"location": {}, "context": _b64(_digest(4, "context", dedup, k)), "crcStatus": "CRC_OK"})
        rx.append(entry)
    msg["rxInfo"] = rx
    lora: dict[str, Any] = {}
    if bandwidth:
        lora["bandwidth"] = bandwidth
    if sf > 0:
        lora["spreadingFactor"] = sf
    lora["codeRate"] = "CR_4_5"
    msg["txInfo"] = {"frequency": frequency, "modulation": {"lora": lora}}
    msg["regionConfigId"] = "eu868"
    return msg


def chirpstack_join(
    *,
    dev_eui: str,
    application_id: str,
    time: datetime,
    dev_addr: str,
    deduplication_id: str | None = None,
    device_name: str | None = None,
    tenant_id: str = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
) -> dict[str, Any]:
    """A ChirpStack v4 ``JoinEvent`` (topic ``.../event/join``) with the new session's ``devAddr``."""
    t = _utc(time)
    return {
        "deduplicationId": deduplication_id or _uuid("join", dev_eui.lower(), dev_addr, rfc3339_chirpstack(t)),
        "time": rfc3339_chirpstack(t),
        "deviceInfo": _device_info(dev_eui, application_id, device_name, tenant_id, None),
        "devAddr": dev_addr.lower(),
        "regionConfigId": "eu868",
    }
