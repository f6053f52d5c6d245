"""The simulated town's layout: sizes, the ten device models, identifiers and geometry."""

from __future__ import annotations

import collections
import re

import pytest

from stadtpuls.ingest.codecs import all_codecs
from stadtpuls.simulators.city import SIZES, build_city
from stadtpuls.simulators.geo import distance_m


@pytest.mark.parametrize("size", sorted(SIZES))
def test_every_size_uses_all_ten_reference_models_with_unique_identifiers(size):
    city = build_city(size, seed=3)
    assert {d.codec for d in city.devices} == set(all_codecs())
    euis = [d.dev_eui for d in city.devices]
    assert len(set(euis)) == len(euis) and all(re.fullmatch(r"[0-9a-f]{16}", e) for e in euis)
    ids = [d.lns_device_id for d in city.devices]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[a-z0-9-]{3,64}", i) for i in ids)
    assert len({s.site_id for s in city.sites}) == len(city.sites)
    assert all(d.site_id in city.site_by_id for d in city.devices)
    for d in city.devices:
        assert d.dev_eui.startswith(d.model.eui_prefix)


def test_sizes_grow_from_small_to_large():
    counts = {size: collections.Counter(s.kind for s in build_city(size, 1).sites) for size in SIZES}
    for kind in ("bin", "space", "stop", "vehicle", "station", "lot", "line"):
        assert counts["small"][kind] < counts["medium"][kind] < counts["large"][kind], kind


def test_lots_have_one_sensor_per_space_and_lines_ordered_stops_near_town():
    city = build_city("medium", 2)
    for lot in city.sites_of("lot"):
        spaces = [s for s in city.sites if s.parent_id == lot.site_id]
        assert len(spaces) == lot.capacity
        assert all(s.kind == "space" for s in spaces)
        assert max(distance_m(lot.lat, lot.lon, s.lat, s.lon) for s in spaces) < 200
    for line in city.sites_of("line"):
        stops = [s for s in city.sites if s.kind == "stop" and s.parent_id == line.site_id]
        assert [s.seq for s in stops] == list(range(1, len(stops) + 1))
        vehicles = [s for s in city.sites if s.kind == "vehicle" and s.parent_id == line.site_id]
        assert vehicles and all(v.capacity in (85, 140) for v in vehicles)
        on_board = [d.model.key for d in city.devices if d.site_id == vehicles[0].site_id]
        assert sorted(on_board) == ["paxcounter", "vs133"]
    for s in city.sites:
        if s.lat is not None:
            assert distance_m(city.center[0], city.center[1], s.lat, s.lon) < city.size.radius_m * 1.2


def test_bins_have_a_geometry_the_hub_can_turn_into_fill_levels():
    city = build_city("small", 4)
    bins = city.sites_of("bin")
    assert {b.waste_type for b in bins} == {"residual", "paper", "packaging", "organic", "glass"}
    for b in bins:
        assert b.depth_mm > b.full_mm > 0 and b.volume_l > 0 and 0 < b.threshold_pct <= 100


def test_same_seed_same_town_and_format_only_picks_network_servers():
    a, b, c = build_city("small", 9, "tts"), build_city("small", 9, "chirpstack"), build_city("small", 10)
    assert [(s.site_id, s.lat, s.lon) for s in a.sites] == [(s.site_id, s.lat, s.lon) for s in b.sites]
    assert [d.dev_eui for d in a.devices] == [d.dev_eui for d in b.devices]
    assert {d.lns for d in a.devices} == {"tts"} and {d.lns for d in b.devices} == {"chirpstack"}
    assert {d.lns for d in build_city("small", 9, "mixed").devices} == {"tts", "chirpstack"}
    assert [d.dev_eui for d in c.devices] != [d.dev_eui for d in a.devices]
    with pytest.raises(ValueError):
        build_city("small", 9, "lorawan")


def test_site_prefix_and_centre_make_a_second_town_with_ids_of_its_own():
    first = build_city("small", 1)
    second = build_city("small", 2, center=(51.28, 12.37), site_prefix="sued-")
    assert all(s.site_id.startswith("sued-") for s in second.sites)
    assert all(s.parent_id is None or s.parent_id.startswith("sued-") for s in second.sites)
    assert all(d.site_id.startswith("sued-") and d.site_id in second.site_by_id for d in second.devices)
    assert [s.site_id for s in second.sites] == ["sued-" + s.site_id for s in build_city("small", 2).sites]
    assert not {s.site_id for s in first.sites} & {s.site_id for s in second.sites}
    assert not {d.dev_eui for d in first.devices} & {d.dev_eui for d in second.devices}
    assert not {d.lns_device_id for d in first.devices} & {d.lns_device_id for d in second.devices}
    centre = [s for s in second.sites if s.lat is not None]
    assert sum(s.lat for s in centre) / len(centre) == pytest.approx(51.28, abs=0.02)
