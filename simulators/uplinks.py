"""Uplink and join messages as The Things Stack v3 and ChirpStack v4 publish them over MQTT.

The shapes follow the reference samples (``tts-v3-uplink.json``, ``tts-v3-join.json``,
``chirpstack-v4-up-full.json``, ``chirpstack-v4-join.json``): TTS in snake_case with upper-case EUIs, 64-bit
numbers as strings and zero values omitted (``f_cnt`` 0, ``channel_index`` 0); ChirpStack v4.1+ in
lowerCamelCase with lower-case EUIs, every integration field present and ``+00:00`` timestamps.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .catalog import MODELS
from .city import Device, Gateway
from .sessions import Session
from .timebase import iso_array, iso_us

__all__ = [
    "Network",
    "Stamps",
    "UplinkFacts",
    "chirpstack_join",
    "chirpstack_uplink",
    "stamps",
    "stamps_array",
    "topic",
    "tts_join",
    "tts_uplink",
]

_NS = uuid.UUID("6f1b3c1e-9d2a-4c43-8a6e-3f2b5d7c9e10")


@dataclass(frozen=True)
class Network:
    """Who the network servers are: the TTS application and tenant, the ChirpStack tenant and application."""

    tts_application: str = "city-sensors"
    tts_tenant: str = "stadtpuls"
    tts_cluster: str = "eu1"
    cs_tenant_name: str = "Stadtwerke"
    cs_application_name: str = "city-sensors"
    profiles: dict[str, str] = field(
        default_factory=lambda: {k: str(uuid.uuid5(_NS, f"device-profile/{k}")) for k in MODELS}
    )

    @cached_property
    def device_infos(self) -> dict[str, dict[str, Any]]:
        """ChirpStack ``deviceInfo`` objects by DevEUI, built once per device."""
        return {}

    @cached_property
    def cs_tenant_id(self) -> str:
        return str(uuid.uuid5(_NS, f"tenant/{self.cs_tenant_name}"))

    @cached_property
    def cs_application_id(self) -> str:
        return str(uuid.uuid5(_NS, f"application/{self.cs_tenant_name}/{self.cs_application_name}"))


@dataclass(slots=True)
class Stamps:
    """The timestamps of one uplink message, as text: the network server's reading time (nanoseconds, ``Z`` for
    TTS, ``+00:00`` for ChirpStack), the gateway's clock, the gateway server's and the application server's (TTS)
    or the network server's (ChirpStack) receive times."""

    server: str
    gateway: str
    received: str
    later: str


def stamps_array(t_us: np.ndarray, extra_ns: np.ndarray, tts: np.ndarray) -> list[Stamps]:
    """:func:`stamps` of many uplinks at once (``tts``: per row, whether the network server is TTS)."""
    t = np.asarray(t_us, dtype=np.int64)
    base = np.datetime_as_string(t.astype("datetime64[us]"), unit="us").tolist()
    gateway = iso_array(t - 91_000)
    received = iso_array(t - 29_000)
    later_tts = iso_array(t + 187_000)
    later_cs = iso_array(t + 63_000, z=False)
    out = []
    for k, (b, ns, is_tts) in enumerate(
        zip(base, np.asarray(extra_ns).tolist(), np.asarray(tts).tolist(), strict=True)
    ):
        if is_tts:
            out.append(Stamps(f"{b}{ns:03d}Z", gateway[k], received[k], later_tts[k]))
        else:
            out.append(Stamps(f"{b}{ns:03d}+00:00", "", "", later_cs[k]))
    return out


def stamps(t_us: int, extra_ns: int, lns: str) -> Stamps:
    """Timestamps of an uplink whose reading time is ``t_us``."""
    if lns == "tts":
        return Stamps(
            _ns_time(t_us, extra_ns, True), iso_us(t_us - 91_000), iso_us(t_us - 29_000), iso_us(t_us + 187_000)
        )
    return Stamps(_ns_time(t_us, extra_ns, False), "", "", iso_us(t_us + 63_000, z=False))


@dataclass(slots=True)
class UplinkFacts:
    """Everything one uplink message says. ``t_us`` is the network server's reading time as written (a skewed
    clock included); gateway entries are ``(gateway, rssi, snr)``."""

    device: Device
    session: Session
    f_cnt: int
    f_port: int
    payload: bytes
    t_us: int
    sf: int
    frequency: int
    channel: int
    airtime_us: int
    gateways: list[tuple[Gateway, float, float]]
    dedup_id: str  # ChirpStack deduplicationId
    ulids: list[str]  # TTS correlation ids (5)
    tokens: list[str]  # per gateway: TTS uplink_token / ChirpStack context
    uplink_ids: list[int]  # per gateway: ChirpStack uplinkId
    stamps: Stamps


def topic(net: Network, device: Device, event: str = "up") -> str:
    if device.lns == "tts":
        return f"v3/{net.tts_application}@{net.tts_tenant}/devices/{device.lns_device_id}/{event}"
    return f"application/{net.cs_application_id}/device/{device.dev_eui}/event/{event}"


def _ns_time(us: int, extra_ns: int, z: bool) -> str:
    text = iso_us(us, z=z)
    return f"{text[:-1] if z else text[:-6]}{extra_ns:03d}{'Z' if z else '+00:00'}"


def _airtime(us: int) -> str:
    return f"{us / 1e6:.3f}s" if us % 1000 == 0 else f"{us / 1e6:.6f}s"


def _tts_ids(net: Network, d: Device, s: Session) -> dict[str, Any]:
    return {
        "device_id": d.lns_device_id,
        "application_ids": {"application_id": net.tts_application},
        "dev_eui": d.dev_eui.upper(),
        "join_eui": "EC656E0000000001",
        "dev_addr": s.dev_addr.upper(),
    }


def tts_uplink(net: Network, f: UplinkFacts) -> dict[str, Any]:
    d = f.device
    st = f.stamps
    rx = []
    for (gw, rssi, snr), token in zip(f.gateways, f.tokens, strict=True):
        entry: dict[str, Any] = {
            "gateway_ids": {"gateway_id": gw.gateway_id, "eui": gw.eui.upper()},
            "time": st.gateway,
            "timestamp": (f.t_us + int(gw.eui[-6:], 16)) % (1 << 32),
            "rssi": rssi,
            "channel_rssi": rssi,
        }
        if snr:
            entry["snr"] = snr
        entry["location"] = {
            "latitude": gw.lat,
            "longitude": gw.lon,
            "altitude": gw.altitude,
            "source": "SOURCE_REGISTRY",
        }
        entry["uplink_token"] = token
        if f.channel:
            entry["channel_index"] = f.channel
        entry["received_at"] = st.received
        rx.append(entry)
    msg: dict[str, Any] = {"session_key_id": f.session.session_key_id, "f_port": f.f_port}
    if f.f_cnt:
        msg["f_cnt"] = f.f_cnt
    if f.payload:
        msg["frm_payload"] = base64.b64encode(f.payload).decode()
    msg["rx_metadata"] = rx
    msg["settings"] = {
        "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": f.sf, "coding_rate": "4/5"}},
        "frequency": str(f.frequency),
        "timestamp": rx[0]["timestamp"],
        "time": rx[0]["time"],
    }
    msg["received_at"] = st.server
    msg["consumed_airtime"] = _airtime(f.airtime_us)
    m = d.model
    msg["version_ids"] = {
        "brand_id": m.brand_id,
        "model_id": m.model_id,
        "hardware_version": m.hardware_version,
        "firmware_version": m.firmware_version,
        "band_id": "EU_863_870",
    }
    msg["network_ids"] = _network_ids(net)
    u = f.ulids
    return {
        "end_device_ids": _tts_ids(net, d, f.session),
        "correlation_ids": [
            f"as:up:{u[0]}",
            f"gs:conn:{u[1]}",
            f"gs:uplink:{u[2]}",
            f"ns:uplink:{u[3]}",
            f"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:{u[4]}",
        ],
        "received_at": st.later,
        "uplink_message": msg,
    }


def _network_ids(net: Network) -> dict[str, str]:
    cluster = f"{net.tts_cluster}.cloud.thethings.industries"
    return {
        "net_id": "000013",
        "ns_id": "EC656E0000000013",
        "tenant_id": net.tts_tenant,
        "cluster_id": net.tts_cluster,
        "cluster_address": cluster,
        "tenant_address": f"{net.tts_tenant}.{cluster}",
    }


def tts_join(net: Network, d: Device, s: Session, t_us: int, ulids: list[str]) -> dict[str, Any]:
    return {
        "end_device_ids": _tts_ids(net, d, s),
        "correlation_ids": [
            f"as:up:{ulids[0]}",
            f"gs:conn:{ulids[1]}",
            f"gs:uplink:{ulids[2]}",
            f"ns:uplink:{ulids[3]}",
            f"rpc:/ttn.lorawan.v3.GsNs/HandleUplink:{ulids[4]}",
        ],
        "received_at": iso_us(t_us + 201_000),
        "join_accept": {"session_key_id": s.session_key_id, "received_at": iso_us(t_us)},
    }


def _cs_device_info(net: Network, d: Device) -> dict[str, Any]:
    info = net.device_infos.get(d.dev_eui)
    if info is None:
        info = net.device_infos[d.dev_eui] = _device_info(net, d)
    return info


def _device_info(net: Network, d: Device) -> dict[str, Any]:
    return {
        "tenantId": net.cs_tenant_id,
        "tenantName": net.cs_tenant_name,
        "applicationId": net.cs_application_id,
        "applicationName": net.cs_application_name,
        "deviceProfileId": net.profiles[d.model.key],
        "deviceProfileName": d.model.profile,
        "deviceName": d.name,
        "devEui": d.dev_eui,
        "deviceClassEnabled": "CLASS_A",
        "tags": {"site": d.site_id},
    }


def chirpstack_uplink(net: Network, f: UplinkFacts) -> dict[str, Any]:
    d = f.device
    when = f.stamps.server
    rx = []
    for (gw, rssi, snr), token, up_id in zip(f.gateways, f.tokens, f.uplink_ids, strict=True):
        entry: dict[str, Any] = {
            "gatewayId": gw.eui,
            "uplinkId": up_id,
            "gwTime": when,
            "nsTime": f.stamps.later,
            "rssi": int(rssi),
            "snr": snr,
        }
        if f.channel:
            entry["channel"] = f.channel
        entry["location"] = {"latitude": gw.lat, "longitude": gw.lon, "altitude": float(gw.altitude)}
        entry["context"] = token
        entry["crcStatus"] = "CRC_OK"
        rx.append(entry)
    return {
        "deduplicationId": f.dedup_id,
        "time": when,
        "deviceInfo": _cs_device_info(net, d),
        "devAddr": f.session.dev_addr,
        "adr": True,
        "dr": 12 - f.sf,
        "fCnt": f.f_cnt,
        "fPort": f.f_port,
        "confirmed": False,
        "data": base64.b64encode(f.payload).decode(),
        "rxInfo": rx,
        "txInfo": {
            "frequency": f.frequency,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": f.sf, "codeRate": "CR_4_5"}},
        },
        "regionConfigId": "eu868",
    }


def chirpstack_join(net: Network, d: Device, s: Session, t_us: int, dedup_id: str) -> dict[str, Any]:
    return {
        "deduplicationId": dedup_id,
        "time": iso_us(t_us, z=False),
        "deviceInfo": _cs_device_info(net, d),
        "devAddr": s.dev_addr,
        "regionConfigId": "eu868",
    }
