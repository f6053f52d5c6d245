"""The ten reference device models the simulated fleet is built from.

Each model names its codec (TTN Device Repository id, the key of :mod:`ingest.codecs`), what it is mounted on,
the identifiers a network server shows for it (TTS ``version_ids``, a ChirpStack device-profile name), the
vendor prefix of its DevEUIs, its reporting interval and how much the mounting attenuates its radio.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BIN_MODELS", "MODELS", "SPACE_MODELS", "STATION_MODELS", "DeviceModel"]


@dataclass(frozen=True)
class DeviceModel:
    key: str
    codec: str
    kind: str  # site kind it is mounted on: bin | space | vehicle | station
    brand_id: str  # TTS version_ids.brand_id
    model_id: str  # TTS version_ids.model_id
    profile: str  # ChirpStack device-profile name
    eui_prefix: str  # 6 hex digits
    report_interval_s: int  # regular report (bins, stations) or heartbeat (parking spaces)
    loss_db: float  # mounting loss: underground, in a lid, inside a bus
    hardware_version: str = "1.0"
    firmware_version: str = "1.0"


MODELS: dict[str, DeviceModel] = {
    m.key: m
    for m in (
        DeviceModel(
            "em310-udl",
            "milesight-iot/em310-udl",
            "bin",
            "milesight-iot",
            "em310-udl",
            "Milesight EM310-UDL",
            "24e124",
            3600,
            8.0,
            "1.3",
            "1.2",
        ),
        DeviceModel(
            "r718x", "netvox/r718x", "bin", "netvox", "r718x", "Netvox R718X", "00137a", 3600, 8.0, "1.0", "1.0"
        ),
        DeviceModel(
            "wilsen",
            "pepperl-fuchs/wilsen-sonic-level",
            "bin",
            "pepperl-fuchs",
            "wilsen-sonic-level",
            "Pepperl+Fuchs WILSEN.sonic.level",
            "70b3d5",
            3600,
            6.0,
            "1.0",
            "1.5",
        ),
        DeviceModel(
            "nps405", "nwave/nps405", "space", "nwave", "nps405", "Nwave NPS405", "70b3d5", 3600, 16.0, "4.0", "2.4.9"
        ),
        DeviceModel(
            "tps110", "bosch/tps110", "space", "bosch", "tps110", "Bosch TPS110", "fcd6bd", 3600, 16.0, "1.0", "0.29.2"
        ),
        DeviceModel(
            "r719a", "netvox/r719a", "space", "netvox", "r719a", "Netvox R719A", "00137a", 3600, 14.0, "1.0", "1.0"
        ),
        DeviceModel(
            "vs133",
            "milesight-iot/vs133",
            "vehicle",
            "milesight-iot",
            "vs133",
            "Milesight VS133",
            "24e124",
            0,
            4.0,
            "1.0",
            "1.1",
        ),
        DeviceModel(
            "paxcounter",
            "opensource/esp32-paxcounter",
            "vehicle",
            "opensource",
            "esp32-paxcounter",
            "ESP32-Paxcounter",
            "70b3d5",
            0,
            4.0,
            "1.0",
            "3.4.0",
        ),
        DeviceModel("ers", "elsys/ers", "station", "elsys", "ers", "Elsys ERS", "a81758", 900, 10.0, "1.0", "1.6"),
        DeviceModel(
            "lht65", "dragino/lht65", "station", "dragino", "lht65", "Dragino LHT65", "a84041", 1200, 2.0, "1.8", "1.8"
        ),
    )
}

BIN_MODELS = ("em310-udl", "r718x", "wilsen")
SPACE_MODELS = ("nps405", "tps110", "r719a")
STATION_MODELS = ("ers", "lht65")
