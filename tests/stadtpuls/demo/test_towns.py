"""The demo's two towns: each registered under its own tenant with its branding and an operator key of its own,
and the feed interleaves their messages in time."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import psycopg
import pytest

from stadtpuls.api.auth import parse_key, verify_secret
from stadtpuls.demo.feed import _messages
from stadtpuls.demo.towns import TOWNS, register, towns
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.timebase import parse_start

CLI = [sys.executable, "-m", "stadtpuls.cli"]


def _cities(seed: int) -> dict[str, set[str]]:
    return {
        t.slug: {d.dev_eui for d in build_city("small", t.seed(seed), "mixed", t.center, t.site_prefix).devices}
        for t in TOWNS
    }


def test_both_towns_devices_are_registered_under_their_tenants(clean_db: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    for _ in range(2):  # a second start of the demo on the same database changes nothing but the keys
        done = [
            register(clean_db, t, city="small", base_seed=1, fmt="mixed", cli=CLI, env=env, out=tmp_path / t.slug)
            for t in towns(2)
        ]
    assert [r.errors for r in done] == [0, 0]
    expected = _cities(1)
    with psycopg.connect(clean_db) as conn:
        for r in done:
            slug = r.town.slug
            euis = {e for (e,) in conn.execute("SELECT dev_eui FROM devices WHERE tenant = %s", (slug,))}
            assert euis == expected[slug] and len(euis) == r.devices
            sites = conn.execute(
                "SELECT count(*), bool_and(site_id LIKE %s) FROM sites WHERE tenant = %s",
                (r.town.site_prefix + "%", slug),
            ).fetchone()
            assert sites == (r.sites, True)
            assert conn.execute("SELECT brand_name, colour FROM tenants WHERE slug = %s", (slug,)).fetchone() == (
                r.town.brand_name,
                r.town.colour,
            )
            parsed = parse_key(r.operator_key)
            assert parsed is not None
            key_id, secret = parsed
            row = conn.execute(
                "SELECT role, tenant, key_hash FROM api_keys WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
            ).fetchone()
            assert row is not None and row[:2] == ("operator", slug) and verify_secret(secret, row[2])
            active = conn.execute(
                "SELECT count(*) FROM api_keys WHERE tenant = %s AND revoked_at IS NULL", (slug,)
            ).fetchone()
            assert active == (1,)  # the first start's key was revoked
        assert conn.execute("SELECT count(*) FROM devices WHERE tenant = 'default'").fetchone() == (0,)


def test_feed_interleaves_the_towns_in_time() -> None:
    start = parse_start("2026-03-02T06:00")
    stream = list(itertools.islice(_messages("small", 1, "mixed", start, "Europe/Berlin", towns=2), 3000))
    expected = _cities(1)

    def town_of(payload: bytes) -> str:
        (slug,) = [slug for slug, euis in expected.items() if any(e.encode() in payload.lower() for e in euis)]
        return slug

    towns_seen = [town_of(m.payload) for m in stream]
    for k in range(0, len(stream), 500):  # both towns all along, not one after the other
        assert set(towns_seen[k : k + 500]) == set(expected), k
    assert stream[-1].t_us - stream[0].t_us < 12 * 3600 * 1_000_000


@pytest.mark.parametrize("count", [1, 0])
def test_one_town_is_the_plain_demo_without_tenants(count: int) -> None:
    assert towns(count) == ()
