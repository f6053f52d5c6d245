from __future__ import annotations

import orjson
import psycopg
import pytest

from stadtpuls.fleet import FleetError, apply, load_file, parse_text

YAML = """
sites:
  - {site_id: stop-1, kind: stop, parent_id: line-5, seq: 1, lat: 51.34, lon: 12.37}
  - {site_id: line-5, kind: line, name: "Linie 5"}
  - {site_id: lot-markt, kind: lot, name: Markt, capacity: 2, lat: 51.3406, lon: 12.3747}
  - {site_id: sp-1, kind: space, parent_id: lot-markt}
  - {site_id: bin-1, kind: bin, waste_type: paper, depth_mm: 1200, full_mm: 200, volume_l: 1100, threshold_pct: 80}
devices:
  - {dev_eui: "A1B2C3D4E5F60708", codec: nwave/nps405, site_id: sp-1, report_interval_s: 600}
  - {dev_eui: "a1b2c3d4e5f60709", codec: milesight-iot/em310-udl, site_id: bin-1, params: {depth_mm: 1150}}
"""


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_import_yaml_creates_sites_parents_first_and_devices(clean_db: str) -> None:
    fleet = parse_text(YAML, "yaml")
    assert fleet.errors == []
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, fleet)
    assert (report.sites_created, report.devices_created, report.errors) == (5, 2, [])
    with psycopg.connect(clean_db) as conn:
        row = conn.execute("SELECT dev_eui, params FROM devices WHERE site_id = 'bin-1'").fetchone()
    assert row == ("a1b2c3d4e5f60709", {"depth_mm": 1150})


def test_import_twice_is_idempotent(clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn:
        apply(conn, parse_text(YAML, "yaml"))
        second = apply(conn, parse_text(YAML, "yaml"))
    assert (second.sites_created, second.sites_updated, second.devices_created, second.devices_updated) == (0,) * 4
    assert second.unchanged == 7
    assert _count(clean_db, "devices") == 2


def test_dry_run_writes_nothing(clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, parse_text(YAML, "yaml"), dry_run=True)
    assert report.devices_created == 2
    assert _count(clean_db, "devices") == 0 and _count(clean_db, "sites") == 0


def test_bad_rows_are_reported_and_good_rows_imported(clean_db: str) -> None:
    text = """
sites:
  - {site_id: b1, kind: bin, depth_mm: 100, full_mm: 150}
  - {site_id: b2, kind: tower}
  - {site_id: b3, kind: bin, lat: 95}
devices:
  - {dev_eui: "xyz", codec: nwave/nps405}
  - {dev_eui: "0000000000000001", codec: acme/unknown}
  - {dev_eui: "0000000000000002", codec: nwave/nps405, site_id: nowhere}
  - {dev_eui: "0000000000000003", codec: nwave/nps405, colour: red}
  - {dev_eui: "0000000000000004", codec: nwave/nps405, report_interval_s: abc}
  - {dev_eui: "0000000000000005", codec: bosch/tps110}
"""
    fleet = parse_text(text, "yaml")
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, fleet)
    got = {(e.section, e.row, e.field) for e in report.errors}
    assert ("sites", 1, "full_mm") in got
    assert ("sites", 2, "kind") in got
    assert ("sites", 3, "lat") in got
    assert ("devices", 1, "dev_eui") in got
    assert ("devices", 2, "codec") in got
    assert any(s == "devices" and r == 3 for s, r, _ in got)  # unknown site: foreign key
    assert ("devices", 4, "colour") in got
    assert ("devices", 5, "report_interval_s") in got
    assert report.devices_created == 1
    assert _count(clean_db, "devices") == 1


def test_csv_with_site_and_param_columns(clean_db: str, tmp_path) -> None:
    path = tmp_path / "fleet.csv"
    path.write_text(
        "dev_eui,codec,site_id,site_kind,site_parent_id,site_capacity,param_depth_mm\n"
        ",,lot-a,lot,,10,\n"
        "00000000000000aa,nwave/nps405,sp-a1,space,lot-a,,\n"
        "00000000000000ab,netvox/r718x,bin-z,bin,,,1300\n"
    )
    fleet = load_file(path)
    assert fleet.errors == []
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, fleet)
        params = conn.execute("SELECT params FROM devices WHERE dev_eui = '00000000000000ab'").fetchone()[0]
        parent = conn.execute("SELECT parent_id FROM sites WHERE site_id = 'sp-a1'").fetchone()[0]
    assert (report.sites_created, report.devices_created) == (3, 2)
    assert params == {"depth_mm": 1300}
    assert parent == "lot-a"


@pytest.mark.parametrize(("text", "fmt"), [("[1, 2", "yaml"), ("- a\n- b", "yaml"), ("a,b\n1,2", "csv")])
def test_unreadable_documents_raise_a_clear_error(text: str, fmt: str) -> None:
    with pytest.raises(FleetError):
        parse_text(text, fmt)


OPEN_DATA_YAML = """
sites:
  - site_id: lot-markt
    kind: lot
    name: Markt
    capacity: 2
    lat: 51.34
    lon: 12.37
    lot_type: car_park
    purpose: CAR
    park_and_ride: [TRAM, BUS]
    address: "Markt 1, 04109 Leipzig"
    opening_hours: "Mo-Sa 07:00-22:00; Su off"
    has_fee: yes
    fee_description: "2 EUR per hour"
    public_url: https://example.org/markt
  - {site_id: line-5, kind: line, gtfs_route_id: "de:5"}
  - {site_id: bus-1, kind: vehicle, parent_id: line-5, capacity: 85, seated_capacity: 32, standing_capacity: 53}
"""


def test_open_data_facts_are_imported_from_yaml_and_csv(clean_db: str, tmp_path) -> None:
    fleet = parse_text(OPEN_DATA_YAML, "yaml")
    assert fleet.errors == []
    path = tmp_path / "fleet.csv"
    path.write_text(
        "dev_eui,codec,site_id,site_kind,site_lot_type,site_park_and_ride,site_has_fee,site_opening_hours\n"
        ',,lot-b,lot,UNDERGROUND,"train, bus",false,24/7\n'
    )
    csv_fleet = load_file(path)
    assert csv_fleet.errors == []
    with psycopg.connect(clean_db) as conn:
        assert apply(conn, fleet).errors == [] and apply(conn, csv_fleet).errors == []
        rows = conn.execute(
            """SELECT site_id, lot_type, purpose, park_and_ride, has_fee, opening_hours, seated_capacity,
                      standing_capacity, gtfs_route_id, public_id FROM sites ORDER BY site_id"""
        ).fetchall()
        again = apply(conn, parse_text(OPEN_DATA_YAML, "yaml"))
    by_id = {r[0]: r[1:] for r in rows}
    assert by_id["lot-markt"][:5] == ("CAR_PARK", "CAR", ["TRAM", "BUS"], True, "Mo-Sa 07:00-22:00; Su off")
    assert by_id["lot-b"][:5] == ("UNDERGROUND", None, ["TRAIN", "BUS"], False, "24/7")
    assert by_id["bus-1"][5:8] == (32, 53, None) and by_id["line-5"][7] == "de:5"
    assert len({r[-1] for r in rows}) == 4 and all(r[-1] for r in rows)  # one integer id each
    assert again.unchanged == 3


def test_bad_open_data_facts_are_row_errors() -> None:
    text = """
sites:
  - {site_id: l1, kind: lot, lot_type: GARAGE}
  - {site_id: l2, kind: lot, purpose: BOAT}
  - {site_id: l3, kind: lot, park_and_ride: [FERRY]}
  - {site_id: l4, kind: lot, opening_hours: "whenever we like"}
  - {site_id: l5, kind: lot, has_fee: maybe}
  - {site_id: l6, kind: lot, public_url: "ftp://x"}
  - {site_id: v1, kind: vehicle, seated_capacity: -1}
"""
    got = {(e.row, e.field) for e in parse_text(text, "yaml").errors}
    assert got == {
        (1, "lot_type"),
        (2, "purpose"),
        (3, "park_and_ride"),
        (4, "opening_hours"),
        (5, "has_fee"),
        (6, "public_url"),
        (7, "seated_capacity"),
    }


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("name", "Papier\r=cmd|' /C calc'!A0"),
        ("name", "Markt\x1b[31m"),
        ("waste_type", "paper\x00"),
        ("name", "a\u2028b"),
    ],
)
def test_import_rejects_control_characters_in_text(clean_db: str, column: str, value: str) -> None:
    site = {"site_id": "bin-9", "kind": "bin", column: value}
    fleet = parse_text(orjson.dumps({"sites": [site], "devices": []}).decode(), "yaml")
    assert [(e.section, e.field) for e in fleet.errors] == [("sites", column)]
    assert "control characters" in fleet.errors[0].message
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, fleet)
    assert report.sites_created == 0
    assert _count(clean_db, "sites") == 0


def test_import_rejects_a_control_character_in_a_csv_device_name(clean_db: str) -> None:
    text = 'dev_eui,codec,name\na1b2c3d4e5f60710,nwave/nps405,"Platz\r=1+1"\n'
    fleet = parse_text(text, "csv")
    assert [(e.section, e.field) for e in fleet.errors] == [("devices", "name")]
