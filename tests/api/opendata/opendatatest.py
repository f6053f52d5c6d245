"""Helpers of the open-data tests: a small seeded town of lots."""

from __future__ import annotations

from datetime import timedelta

from apitest import Seeder, now


def seed_town(seed: Seeder) -> dict[str, list[str]]:
    """Three lots: "markt" (fresh, one silent sensor), "bahnhof" (newest reading 40 minutes old, closed by its
    hours), "ring" (no reading at all); a lot without coordinates."""
    t = now()
    devs = {
        "markt": seed.lot("markt", 4, lat=51.3400, lon=12.3750),
        "bahnhof": seed.lot("bahnhof", 3, lat=51.3450, lon=12.3820),
        "ring": seed.lot("ring", 2, lat=51.3000, lon=12.3000),
    }
    seed.conn.execute(
        """UPDATE sites SET lot_type = 'CAR_PARK', purpose = 'CAR', opening_hours = '24/7',
               address = 'Markt 1, 04109 Leipzig', has_fee = true, fee_description = '2 EUR/h',
               park_and_ride = ARRAY['TRAM'], operator_name = 'Stadtwerke', public_url = 'https://example.org/markt'
           WHERE site_id = 'markt'"""
    )
    seed.conn.execute("UPDATE sites SET lot_type = 'ON_STREET', opening_hours = '24/7 off' WHERE site_id = 'bahnhof'")
    seed.site("nowhere", "lot", capacity=5)
    m = devs["markt"]
    seed.park(m[0], t - timedelta(minutes=3), False)
    seed.park(m[1], t - timedelta(minutes=2), False)
    seed.park(m[2], t - timedelta(minutes=1), True)
    seed.park(m[3], t - timedelta(hours=3), False)  # silent for 3 heartbeats: unknown, never free
    for d in devs["bahnhof"]:
        seed.park(d, t - timedelta(minutes=40), False)
    return devs
