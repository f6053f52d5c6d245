"""Network-server messages exactly as The Things Stack v3 and ChirpStack v4 publish them (pure functions): the one
place that knows their shapes.

Each builder returns the JSON object as a dict (serialise with ``orjson.dumps``); the shapes follow
``tests/data/lns-formats`` (README sections 1.3 and 2.3/2.4, and the samples):

* TTS: snake_case, zero values omitted (``f_cnt`` 0, ``f_port`` 0, empty payload are absent), EUIs upper-case,
  ``frequency`` a decimal string, timestamps ``Z`` with 9 fraction digits, one ``rx_metadata`` entry per gateway.
* ChirpStack v4 (4.1+): lowerCamelCase, every scalar of the event present (``fCnt: 0``, ``confirmed: false``),
  defaults omitted inside ``rxInfo``/``txInfo``, EUIs lower-case, timestamps ``+00:00`` with 0/3/6/9 fraction digits.

Two layers. The writers (``tts_uplink_message``, ``tts_reception``, ``tts_join_message``, ``tts_device_ids``,
``chirpstack_uplink_message``, ``chirpstack_reception``, ``chirpstack_join_message``, ``device_info``) take every
value as the message carries it (timestamps as text) and only arrange and omit fields. The keyword builders
(``tts_uplink``, ``chirpstack_uplink``, ``tts_join``, ``chirpstack_join``), for tests, drills and the load fleet,
take plain values and derive what the servers generate (correlation ids, deduplication ids, session keys, uplink
tokens) deterministically from the arguments, so the same arguments give byte-identical messages; the simulated
city (:mod:`simulators.uplinks`) feeds the writers the values its models drew.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from hashlib import blake2b
from typing import Any

import orjson

from stadtpuls.ingest.envelopes.radio import lora_from_dr

from .sessions import ulid

__all__ = [
    "TTS_CORRELATION_PREFIXES",
    "Gateway",
    "chirpstack_join",
    "chirpstack_join_message",
    "chirpstack_reception",
    "chirpstack_topic",
    "chirpstack_uplink",
    "chirpstack_uplink_message",
    "device_info",
    "rfc3339_chirpstack",
    "rfc3339_tts",
    "tts_device_ids",
    "tts_join",
    "tts_join_message",
    "tts_reception",
    "tts_topic",
    "tts_uplink",
    "tts_uplink_message",
]

#: A receiving gateway: (gateway id, RSSI dBm, SNR dB). TTS ids look like ``eui-0016c001f153a14c``;
#: ChirpStack ids are the 16-hex-digit gateway EUI.
Gateway = tuple[str, float, float]

_DEFAULT_GATEWAY: Gateway = ("0016c001f153a14c", -85.0, 7.5)
_DEFAULT_TENANT = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"
#: The correlation ids of an uplink or join that passed the gateway server, in the order TTS lists them; the
#: keyword builders write only the first and the fourth (``as:up``, ``ns:uplink``).
TTS_CORRELATION_PREFIXES = ("as:up:", "gs:conn:", "gs:uplink:", "ns:uplink:", "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:")


def _digest(size: int, *parts: Any) -> bytes:
    return blake2b(orjson.dumps(parts, default=str), digest_size=size, person=b"stadtpuls.build").digest()


def _ulid(when: datetime, *parts: Any) -> str:
    """A ULID (48-bit ms time + 80 bits) whose random part is derived from ``parts``."""
    return ulid(int(when.timestamp() * 1000), _digest(10, *parts))


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


def tts_device_ids(
    device_id: str, app_id: str, dev_eui: str | None, join_eui: str | None, dev_addr: str | None
) -> dict[str, Any]:
    """``end_device_ids``: EUIs and DevAddr upper-case, absent ones omitted."""
    ids: dict[str, Any] = {"device_id": device_id, "application_ids": {"application_id": app_id}}
    if dev_eui:
        ids["dev_eui"] = dev_eui.upper()
    if join_eui:
        ids["join_eui"] = join_eui.upper()
    if dev_addr:
        ids["dev_addr"] = dev_addr.upper()
    return ids


def tts_reception(
    gateway_id: str,
    eui: str,
    *,
    time: str,
    timestamp: int,
    rssi: float,
    snr: float,
    received_at: str,
    location: dict[str, Any] | None = None,
    token: str = "",
    channel: int = 0,
) -> dict[str, Any]:
    """One ``rx_metadata`` entry (zero SNR and channel, and an absent EUI, location or token omitted)."""
    ids: dict[str, Any] = {"gateway_id": gateway_id}
    if eui:
        ids["eui"] = eui.upper()
    entry: dict[str, Any] = {
        "gateway_ids": ids,
        "time": time,
        "timestamp": timestamp,
        "rssi": rssi,
        "channel_rssi": rssi,
    }
    if snr:
        entry["snr"] = snr
    if location is not None:
        entry["location"] = location
    if token:
        entry["uplink_token"] = token
    if channel:
        entry["channel_index"] = channel
    entry["received_at"] = received_at
    return entry


def tts_uplink_message(
    *,
    ids: dict[str, Any],
    correlation_ids: list[str],
    received_at: str,
    ns_received_at: str,
    session_key_id: str,
    f_port: int,
    f_cnt: int,
    payload: bytes,
    rx: list[dict[str, Any]],
    sf: int,
    bandwidth: int,
    frequency: int,
    gateway_time: str,
    gateway_timestamp: int | None = None,
    decoded: dict[str, Any] | None = None,
    confirmed: bool = False,
    airtime: str = "",
    version_ids: dict[str, str] | None = None,
    network_ids: dict[str, str] | None = None,
    simulated: bool = False,
) -> dict[str, Any]:
    """A TTS ``ApplicationUp`` with ``uplink_message``: ``received_at`` is the Application Server's time,
    ``ns_received_at`` the Network Server's, ``gateway_time`` the gateway's (``settings.time``). Zero values are
    omitted; a simulated uplink has no ``f_cnt``, session or NS ``received_at``, as TTS sends it."""
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
    if rx:
        up["rx_metadata"] = rx
    lora: dict[str, Any] = {}
    if bandwidth:
        lora["bandwidth"] = bandwidth
    if sf > 0:
        lora["spreading_factor"] = sf
        lora["coding_rate"] = "4/5"
    settings: dict[str, Any] = {"data_rate": {"lora": lora} if lora else {}, "frequency": str(frequency)}
    if gateway_timestamp is not None:
        settings["timestamp"] = gateway_timestamp
    settings["time"] = gateway_time
    up["settings"] = settings
    if not simulated:
        up["received_at"] = ns_received_at
    if confirmed:
        up["confirmed"] = True
    if airtime:
        up["consumed_airtime"] = airtime
    if version_ids is not None:
        up["version_ids"] = version_ids
    if network_ids is not None:
        up["network_ids"] = network_ids
    msg: dict[str, Any] = {
        "end_device_ids": ids,
        "correlation_ids": correlation_ids,
        "received_at": received_at,
        "uplink_message": up,
    }
    if simulated:
        msg["simulated"] = True
    return msg


def tts_join_message(
    *, ids: dict[str, Any], correlation_ids: list[str], received_at: str, ns_received_at: str, session_key_id: str
) -> dict[str, Any]:
    """A TTS ``ApplicationUp`` with ``join_accept`` (topic ``.../join``) for the new session's key id."""
    return {
        "end_device_ids": ids,
        "correlation_ids": correlation_ids,
        "received_at": received_at,
        "join_accept": {"session_key_id": session_key_id, "received_at": ns_received_at},
    }


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
    gw_text = rfc3339_tts(gw_time)
    rx = [
        tts_reception(
            gateway_id,
            gateway_id[4:] if gateway_id.startswith("eui-") else "",
            time=gw_text,
            timestamp=int(gw_time.timestamp() * 1e6) % 2**32,
            rssi=rssi,
            snr=snr,
            received_at=rfc3339_tts(gw_time + timedelta(milliseconds=8)),
        )
        for gateway_id, rssi, snr in gateways
    ]
    return tts_uplink_message(
        ids=tts_device_ids(device_id, app_id, dev_eui, join_eui, dev_addr),
        correlation_ids=[
            f"as:up:{_ulid(ns, 'as', app_id, device_id, f_cnt)}",
            f"ns:uplink:{_ulid(ns, 'ns', app_id, device_id, f_cnt)}",
        ],
        received_at=rfc3339_tts(ns + timedelta(milliseconds=15)),
        ns_received_at=rfc3339_tts(ns),
        session_key_id=session_key_id or _b64(_digest(16, "session", app_id, device_id)),
        f_port=f_port,
        f_cnt=f_cnt,
        payload=payload,
        rx=rx,
        sf=sf,
        bandwidth=bandwidth,
        frequency=frequency,
        gateway_time=gw_text,
        decoded=decoded,
        confirmed=confirmed,
        simulated=simulated,
    )


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
    return tts_join_message(
        ids=tts_device_ids(device_id, app_id, dev_eui, join_eui, dev_addr),
        correlation_ids=[f"as:up:{_ulid(ns, 'join', app_id, device_id, session_key_id)}"],
        received_at=rfc3339_tts(ns + timedelta(milliseconds=15)),
        ns_received_at=rfc3339_tts(ns),
        session_key_id=session_key_id,
    )


def device_info(
    *,
    tenant_id: str,
    tenant_name: str,
    application_id: str,
    application_name: str,
    profile_id: str,
    profile_name: str,
    device_name: str,
    dev_eui: str,
    tags: dict[str, str],
) -> dict[str, Any]:
    """ChirpStack's ``deviceInfo`` object (DevEUI lower-case)."""
    return {
        "tenantId": tenant_id,
        "tenantName": tenant_name,
        "applicationId": application_id,
        "applicationName": application_name,
        "deviceProfileId": profile_id,
        "deviceProfileName": profile_name,
        "deviceName": device_name,
        "devEui": dev_eui.lower(),
        "deviceClassEnabled": "CLASS_A",
        "tags": tags,
    }


def chirpstack_reception(
    gateway_id: str,
    *,
    uplink_id: int,
    ns_time: str,
    rssi: int,
    snr: float | None,
    context: str,
    gw_time: str = "",
    channel: int = 0,
    location: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``rxInfo`` entry; ``snr`` None, channel 0 and an empty ``gw_time`` are omitted."""
    entry: dict[str, Any] = {"gatewayId": gateway_id.lower(), "uplinkId": uplink_id}
    if gw_time:
        entry["gwTime"] = gw_time
    entry["nsTime"] = ns_time
    entry["rssi"] = rssi
    if snr is not None:
        entry["snr"] = snr
    if channel:
        entry["channel"] = channel
    entry["location"] = location if location is not None else {}
    entry["context"] = context
    entry["crcStatus"] = "CRC_OK"
    return entry


def chirpstack_uplink_message(
    *,
    deduplication_id: str,
    time: str,
    device: dict[str, Any],
    dev_addr: str,
    dr: int,
    f_cnt: int,
    f_port: int,
    payload: bytes,
    rx: list[dict[str, Any]],
    sf: int,
    bandwidth: int,
    frequency: int,
    decoded: dict[str, Any] | None = None,
    confirmed: bool = False,
) -> dict[str, Any]:
    """A ChirpStack v4 ``UplinkEvent`` (topic ``.../event/up``) in the key order of v4.11+; ``device`` is the
    :func:`device_info` object."""
    msg: dict[str, Any] = {
        "deduplicationId": deduplication_id,
        "time": time,
        "deviceInfo": device,
        "devAddr": dev_addr.lower(),
        "adr": True,
        "dr": dr,
        "fCnt": f_cnt,
        "fPort": f_port,
        "confirmed": confirmed,
        "data": _b64(payload),
    }
    if decoded is not None:
        msg["object"] = decoded
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


def chirpstack_join_message(
    *, deduplication_id: str, time: str, device: dict[str, Any], dev_addr: str
) -> dict[str, Any]:
    """A ChirpStack v4 ``JoinEvent`` (topic ``.../event/join``) with the new session's ``devAddr``."""
    return {
        "deduplicationId": deduplication_id,
        "time": time,
        "deviceInfo": device,
        "devAddr": dev_addr.lower(),
        "regionConfigId": "eu868",
    }


def _device_info(
    dev_eui: str, application_id: str, device_name: str | None, tenant_id: str, tags: dict[str, str] | None
) -> dict[str, Any]:
    return device_info(
        tenant_id=tenant_id,
        tenant_name="stadtpuls",
        application_id=application_id,
        application_name="stadtpuls",
        profile_id=_uuid("profile", application_id),
        profile_name="default",
        device_name=device_name or dev_eui.lower(),
        dev_eui=dev_eui,
        tags=dict(tags or {}),
    )


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
    tenant_id: str = _DEFAULT_TENANT,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ChirpStack v4 ``UplinkEvent`` (topic ``.../event/up``), as v4.11+ writes it.

    ``deduplication_id`` defaults to a UUID derived from (DevEUI, fCnt, time): distinct uplinks get distinct ids,
    and calling again with the same arguments (a duplicate delivery) gives the same id. ``decoded`` becomes
    ``object`` (numbers as the caller gives them; ChirpStack itself writes floats).
    """
    t = rfc3339_chirpstack(time)
    sf, bandwidth = lora_from_dr(dr, frequency)
    dedup = deduplication_id or _uuid("dedup", dev_eui.lower(), f_cnt, t)
    rx = [
        chirpstack_reception(
            gateway_id,
            uplink_id=int.from_bytes(_digest(4, "uplink", dedup, k), "big"),
            ns_time=t,
            rssi=int(round(rssi)),
            snr=snr or None,
            context=_b64(_digest(4, "context", dedup, k)),
        )
        for k, (gateway_id, rssi, snr) in enumerate(gateways)
    ]
    return chirpstack_uplink_message(
        deduplication_id=dedup,
        time=t,
        device=_device_info(dev_eui, application_id, device_name, tenant_id, tags),
        dev_addr=dev_addr or _digest(4, "devaddr", dev_eui.lower()).hex(),
        dr=dr,
        f_cnt=f_cnt,
        f_port=f_port,
        payload=payload,
        rx=rx,
        sf=sf,
        bandwidth=bandwidth,
        frequency=frequency,
        decoded=decoded,
        confirmed=confirmed,
    )


def chirpstack_join(
    *,
    dev_eui: str,
    application_id: str,
    time: datetime,
    dev_addr: str,
    deduplication_id: str | None = None,
    device_name: str | None = None,
    tenant_id: str = _DEFAULT_TENANT,
) -> dict[str, Any]:
    """A ChirpStack v4 ``JoinEvent`` (topic ``.../event/join``) with the new session's ``devAddr``."""
    t = rfc3339_chirpstack(time)
    return chirpstack_join_message(
        deduplication_id=deduplication_id or _uuid("join", dev_eui.lower(), dev_addr, t),
        time=t,
        device=_device_info(dev_eui, application_id, device_name, tenant_id, None),
        dev_addr=dev_addr,
    )
