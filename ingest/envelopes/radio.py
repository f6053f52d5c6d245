"""LoRa data-rate tables (LoRaWAN Regional Parameters): DR index <-> spreading factor and bandwidth.

TTS no longer sends a DR index and ChirpStack v3 ``json_v3`` sends only the index, so the missing side is derived
from the region. The region comes from the TTS band id when present, otherwise from the frequency: the EU-like
plans (EU868, EU433, CN470, IN865, RU864, KR920, AS923 share DR0..5 = SF12..7 at 125 kHz, DR6 = SF7 at 250 kHz)
are recognised by their bands; the 902-928 MHz plans (US915, AU915, AS923) differ and stay unknown without a band.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["dr_from_lora", "lora_from_dr"]

_EU_LIKE_BANDS = frozenset(
    {
        "EU_863_870",
        "EU_433",
        "CN_470_510",
        "CN_470_510_20_A",
        "CN_470_510_20_B",
        "CN_470_510_26_A",
        "CN_470_510_26_B",
        "CN_779_787",
        "IN_865_867",
        "RU_864_870",
        "KR_920_923",
        "AS_923",
        "AS_923_2",
        "AS_923_3",
        "AS_923_4",
        "ISM_2400",
    }
)
_US_BANDS = frozenset({"US_902_928"})
_AU_BANDS = frozenset({"AU_915_928"})


def _plan(frequency: int, band: str | None) -> str:
    if band:
        if band in _EU_LIKE_BANDS:
            return "eu"
        if band in _US_BANDS:
            return "us"
        if band in _AU_BANDS:
            return "au"
        return ""
    mhz = frequency / 1e6
    if 863 <= mhz <= 870 or 433 <= mhz <= 435 or 470 <= mhz <= 510 or 779 <= mhz <= 787 or 920 <= mhz <= 923.5:
        # 920-923.5 MHz is KR920 or AS923 (both EU-like); US915/AU915 uplinks lie below 915 MHz.
        return "eu"
    return ""


@lru_cache(maxsize=4096)
def dr_from_lora(sf: int, bandwidth: int, frequency: int, band: str | None = None) -> int:
    """Uplink DR index of a LoRa (SF, bandwidth Hz) pair, -1 if unknown."""
    plan = _plan(frequency, band)
    if plan == "eu":
        if bandwidth == 125_000 and 7 <= sf <= 12:
            return 12 - sf
        if bandwidth == 250_000 and sf == 7:
            return 6
    elif plan == "us":
        if bandwidth == 125_000 and 7 <= sf <= 10:
            return 10 - sf
        if bandwidth == 500_000 and sf == 8:
            return 4
    elif plan == "au":
        if bandwidth == 125_000 and 7 <= sf <= 12:
            return 12 - sf
        if bandwidth == 500_000 and sf == 8:
            return 6
    return -1


@lru_cache(maxsize=4096)
def lora_from_dr(dr: int, frequency: int, band: str | None = None) -> tuple[int, int]:
    """(SF, bandwidth Hz) of an uplink DR index; (-1, 0) if unknown or not LoRa."""
    plan = _plan(frequency, band)
    if plan in ("eu", "au") and 0 <= dr <= 5:
        return 12 - dr, 125_000
    if plan == "eu" and dr == 6:
        return 7, 250_000
    if plan == "au" and dr == 6:
        return 8, 500_000
    if plan == "us":
        if 0 <= dr <= 3:
            return 10 - dr, 125_000
        if dr == 4:
            return 8, 500_000
    return -1, 0
