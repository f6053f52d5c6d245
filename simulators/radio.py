"""The radio side of each uplink: spreading factor chosen by ADR from the link budget, the EU868 channel, the
gateways that heard it with their RSSI and SNR, and the time on air.

Path loss is log-distance (118 dB at 1 km, exponent 2.9) plus the device's mounting loss and a fixed shadowing
per device and gateway; every uplink adds fast fading. A gateway hears an uplink when its SNR is above the
spreading factor's demodulation floor; the best gateway always hears it (the network server only forwards what
was received).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .city import City, stream
from .geo import distance_m

__all__ = ["CHANNELS_HZ", "RadioBatch", "RadioModel", "airtime_us"]

CHANNELS_HZ = np.array(
    [868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000],
    dtype=np.int64,
)
_FLOOR = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
NOISE_DBM = -117.0
TX_DBM = 16.0  # 14 dBm plus antenna gains
MARGIN_DB = 10.0  # ADR installation margin


def airtime_us(payload_len: np.ndarray, sf: np.ndarray) -> np.ndarray:
    """LoRa time on air (125 kHz, CR 4/5, 8-symbol preamble, explicit header, CRC) of uplinks carrying
    ``payload_len`` application bytes (plus 13 bytes of LoRaWAN framing), in microseconds."""
    pl = np.asarray(payload_len, dtype=np.int64) + 13
    sf = np.asarray(sf, dtype=np.int64)
    de = (sf >= 11).astype(np.int64)
    t_sym = (2.0**sf) / 125_000 * 1e6
    n = 8 + np.maximum(np.ceil((8 * pl - 4 * sf + 28 + 16) / (4 * (sf - 2 * de))) * 5, 0)
    returned: np.ndarray = np.round((12.25 + n) * t_sym).astype(np.int64)
    return returned


@dataclass
class RadioBatch:
    sf: np.ndarray  # (n,)
    dr: np.ndarray
    frequency: np.ndarray
    channel: np.ndarray
    airtime_us: np.ndarray
    heard: np.ndarray  # (n, gateways) bool
    rssi: np.ndarray  # (n, gateways) dBm, whole numbers
    snr: np.ndarray  # (n, gateways) dB, quarter steps


class RadioModel:
    def __init__(self, city: City, seed: int) -> None:
        self.rng = stream(seed, "radio")
        setup = stream(seed, "radio-setup")
        self.gateways = city.gateways
        lat = np.array([d.lat for d in city.devices])
        lon = np.array([d.lon for d in city.devices])
        glat = np.array([g.lat for g in city.gateways])
        glon = np.array([g.lon for g in city.gateways])
        dist = np.maximum(distance_m(lat[:, None], lon[:, None], glat[None, :], glon[None, :]), 30.0)
        loss = np.array([d.model.loss_db for d in city.devices])
        shadow = setup.normal(0, 6.0, dist.shape)
        self.mean_rssi = TX_DBM - (118 + 29 * np.log10(dist / 1000)) - loss[:, None] - shadow
        best_snr = self.mean_rssi.max(axis=1) - NOISE_DBM
        sf = np.full(len(city.devices), 12, dtype=np.int64)
        for s in (11, 10, 9, 8, 7):
            sf = np.where(best_snr - _FLOOR[s] >= MARGIN_DB, s, sf)
        self.sf = sf

    def sample(self, dev: np.ndarray, payload_len: np.ndarray) -> RadioBatch:
        rng = self.rng
        n = len(dev)
        sf = self.sf[dev]
        rssi = self.mean_rssi[dev] + rng.normal(0, 2.5, (n, len(self.gateways)))
        snr = np.minimum(rssi - NOISE_DBM + rng.normal(0, 1.0, rssi.shape), 13.5)
        floor = np.vectorize(_FLOOR.__getitem__, otypes=[float])(sf) if n else np.zeros(0)
        heard = snr >= floor[:, None] - 2.5
        best = np.argmax(rssi, axis=1) if n else np.zeros(0, dtype=np.int64)
        heard[np.arange(n), best] = True
        channel = rng.integers(0, len(CHANNELS_HZ), n)
        return RadioBatch(
            sf=sf,
            dr=12 - sf,
            frequency=CHANNELS_HZ[channel],
            channel=channel,
            airtime_us=airtime_us(payload_len, sf),
            heard=heard,
            rssi=np.round(np.maximum(rssi, -139)),
            snr=np.round(snr * 4) / 4,
        )
