"""Registry export: the simulated city as the YAML and CSV that ``stadtpuls devices import`` reads."""

from __future__ import annotations

import psycopg
import pytest

from stadtpuls import fleet
from stadtpuls.simulators.city import build_city
from stadtpuls.simulators.export import fleet_document, registry_csv, registry_yaml, write_registry


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_export_parses_without_row_errors_and_keeps_the_geometry(fmt):
    city = build_city("small", 2)
    text = registry_yaml(city) if fmt == "yaml" else registry_csv(city)
    parsed = fleet.parse_text(text, fmt)
    assert parsed.errors == []
    assert len(parsed.sites) == len(city.sites) and len(parsed.devices) == len(city.devices)
    sites = {s["site_id"]: s for s in parsed.sites}
    for s in city.sites_of("bin"):
        got = sites[s.site_id]
        assert (got["depth_mm"], got["full_mm"], got["threshold_pct"], got["waste_type"]) == (
            s.depth_mm,
            s.full_mm,
            s.threshold_pct,
            s.waste_type,
        )
    for s in city.sites_of("stop"):
        assert (sites[s.site_id]["seq"], sites[s.site_id]["parent_id"]) == (s.seq, s.parent_id)
    devices = {d["dev_eui"]: d for d in parsed.devices}
    for d in city.devices:
        assert devices[d.dev_eui]["codec"] == d.codec and devices[d.dev_eui]["site_id"] == d.site_id


def test_export_imports_into_the_hub_once_and_again_unchanged(clean_db, tmp_path):
    city = build_city("small", 3)
    path = write_registry(city, tmp_path / "fleet.yaml")
    parsed = fleet.load_file(path)
    with psycopg.connect(clean_db) as conn:
        first = fleet.apply(conn, parsed)
        second = fleet.apply(conn, parsed)
        kinds = dict(conn.execute("SELECT kind, count(*) FROM sites GROUP BY kind").fetchall())
        devices = conn.execute("SELECT count(*) FROM devices").fetchone()[0]
        lot = city.sites_of("lot")[0]
        spaces = conn.execute("SELECT count(*) FROM sites WHERE parent_id = %s", [lot.site_id]).fetchone()[0]
    assert first.errors == [] and first.sites_created == len(city.sites)
    assert first.devices_created == len(city.devices) == devices
    assert second.unchanged == len(city.sites) + len(city.devices)
    assert kinds["bin"] == len(city.sites_of("bin")) and spaces == lot.capacity


def test_sites_come_before_the_sites_that_belong_to_them():
    doc = fleet_document(build_city("small", 1))
    seen = set()
    for s in doc["sites"]:
        assert s.get("parent_id") is None or s["parent_id"] in seen
        seen.add(s["site_id"])
    assert all(d["params"]["model"] and d["params"]["lns"] in ("tts", "chirpstack") for d in doc["devices"])
