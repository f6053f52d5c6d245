"""Radio metadata: LoRa time on air, ADR spreading factors, gateways that hear each uplink."""

from __future__ import annotations

import numpy as np

from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.geo import distance_m
from stadtpuls.simulators.radio import CHANNELS_HZ, RadioModel, airtime_us


def test_time_on_air_matches_the_semtech_formula():
    # 13 bytes of LoRaWAN framing + application payload; reference values of Semtech's LoRa calculator
    assert airtime_us(np.array([9]), np.array([7]))[0] == 56_576
    assert airtime_us(np.array([38]), np.array([12]))[0] == 2_465_792
    assert (np.diff(airtime_us(np.full(6, 20), np.arange(7, 13))) > 0).all()


def test_far_devices_use_higher_spreading_factors_and_every_uplink_is_heard():
    city = build_city("large", 3)
    radio = RadioModel(city, 3)
    lat = np.array([d.lat for d in city.devices])
    lon = np.array([d.lon for d in city.devices])
    nearest = np.min([distance_m(lat, lon, g.lat, g.lon) for g in city.gateways], axis=0)
    near, far = radio.sf[nearest < 400], radio.sf[nearest > 2500]
    assert near.mean() < far.mean()
    assert set(np.unique(radio.sf)) <= set(range(7, 13))
    dev = np.arange(len(city.devices))
    batch = radio.sample(dev, np.full(len(dev), 12))
    assert batch.heard.any(axis=1).all()
    assert set(batch.frequency.tolist()) <= set(CHANNELS_HZ.tolist())
    assert (batch.dr == 12 - batch.sf).all()
    best = batch.rssi.max(axis=1)
    assert (best > -140).all() and (best < -20).all()
    assert (np.round(batch.snr * 4) == batch.snr * 4).all()
