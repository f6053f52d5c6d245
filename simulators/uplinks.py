"""The simulated city's uplinks and joins: who the network servers are (:class:`Network`), what one uplink says
(:class:`UplinkFacts` with its :class:`Stamps`), and its message, written by :mod:`simulators.messages`.

The values come from the city's models (gateways with their locations, radio, sessions, drawn ids); the shapes
are those of the reference samples (``tts-v3-uplink.json``, ``tts-v3-join.json``, ``chirpstack-v4-up-full.json``,
``chirpstack-v4-join.json``), kept in one place, :mod:`simulators.messages`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .catalog import MODELS
from .city import Device, Gateway
from .messages import (
    TTS_CORRELATION_PREFIXES,
    chirpstack_join_message,
    chirpstack_reception,
    chirpstack_topic,
    chirpstack_uplink_message,
    device_info,
    tts_device_ids,
    tts_join_message,
    tts_reception,
    tts_topic,
    tts_uplink_message,
)
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
        return tts_topic(net.tts_application, device.lns_device_id, event, tenant=net.tts_tenant)
    return chirpstack_topic(net.cs_application_id, device.dev_eui, event)


def _ns_time(us: int, extra_ns: int, z: bool) -> str:
    text = iso_us(us, z=z)
    return f"{text[:-1] if z else text[:-6]}{extra_ns:03d}{'Z' if z else '+00:00'}"


def _airtime(us: int) -> str:
    return f"{us / 1e6:.3f}s" if us % 1000 == 0 else f"{us / 1e6:.6f}s"


def _tts_ids(net: Network, d: Device, s: Session) -> dict[str, Any]:
    return tts_device_ids(d.lns_device_id, net.tts_application, d.dev_eui, "EC656E0000000001", s.dev_addr)


def _correlation_ids(ulids: list[str]) -> list[str]:
    return [prefix + u for prefix, u in zip(TTS_CORRELATION_PREFIXES, ulids, strict=True)]


def tts_uplink(net: Network, f: UplinkFacts) -> dict[str, Any]:
    d = f.device
    st = f.stamps
    rx = [
        tts_reception(
            gw.gateway_id,
            gw.eui,
            time=st.gateway,
            timestamp=(f.t_us + int(gw.eui[-6:], 16)) % (1 << 32),
            rssi=rssi,
            snr=snr,
            received_at=st.received,
            location={"latitude": gw.lat, "longitude": gw.lon, "altitude": gw.altitude, "source": "SOURCE_REGISTRY"},
            token=token,
            channel=f.channel,
        )
        for (gw, rssi, snr), token in zip(f.gateways, f.tokens, strict=True)
    ]
    m = d.model
    return tts_uplink_message(
        ids=_tts_ids(net, d, f.session),
        correlation_ids=_correlation_ids(f.ulids),
        received_at=st.later,
        ns_received_at=st.server,
        session_key_id=f.session.session_key_id,
        f_port=f.f_port,
        f_cnt=f.f_cnt,
        payload=f.payload,
        rx=rx,
        sf=f.sf,
        bandwidth=125000,
        frequency=f.frequency,
        gateway_time=rx[0]["time"],
        gateway_timestamp=rx[0]["timestamp"],
        airtime=_airtime(f.airtime_us),
        version_ids={
            "brand_id": m.brand_id,
            "model_id": m.model_id,
            "hardware_version": m.hardware_version,
            "firmware_version": m.firmware_version,
            "band_id": "EU_863_870",
        },
        network_ids=_network_ids(net),
    )


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
    return tts_join_message(
        ids=_tts_ids(net, d, s),
        correlation_ids=_correlation_ids(ulids),
        received_at=iso_us(t_us + 201_000),
        ns_received_at=iso_us(t_us),
        session_key_id=s.session_key_id,
    )


def _cs_device_info(net: Network, d: Device) -> dict[str, Any]:
    info = net.device_infos.get(d.dev_eui)
    if info is None:
        info = net.device_infos[d.dev_eui] = device_info(
            tenant_id=net.cs_tenant_id,
            tenant_name=net.cs_tenant_name,
            application_id=net.cs_application_id,
            application_name=net.cs_application_name,
            profile_id=net.profiles[d.model.key],
            profile_name=d.model.profile,
            device_name=d.name,
            dev_eui=d.dev_eui,
            tags={"site": d.site_id},
        )
    return info


def chirpstack_uplink(net: Network, f: UplinkFacts) -> dict[str, Any]:
    when = f.stamps.server
    rx = [
        chirpstack_reception(
            gw.eui,
            uplink_id=up_id,
            gw_time=when,
            ns_time=f.stamps.later,
            rssi=int(rssi),
            snr=snr,
            channel=f.channel,
            location={"latitude": gw.lat, "longitude": gw.lon, "altitude": float(gw.altitude)},
            context=token,
        )
        for (gw, rssi, snr), token, up_id in zip(f.gateways, f.tokens, f.uplink_ids, strict=True)
    ]
    return chirpstack_uplink_message(
        deduplication_id=f.dedup_id,
        time=when,
        device=_cs_device_info(net, f.device),
        dev_addr=f.session.dev_addr,
        dr=12 - f.sf,
        f_cnt=f.f_cnt,
        f_port=f.f_port,
        payload=f.payload,
        rx=rx,
        sf=f.sf,
        bandwidth=125000,
        frequency=f.frequency,
    )


def chirpstack_join(net: Network, d: Device, s: Session, t_us: int, dedup_id: str) -> dict[str, Any]:
    return chirpstack_join_message(
        deduplication_id=dedup_id, time=iso_us(t_us, z=False), device=_cs_device_info(net, d), dev_addr=s.dev_addr
    )
