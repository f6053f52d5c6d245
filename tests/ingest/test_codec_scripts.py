"""Script codecs in the database: versions, examples and maps kept; the registry and registry imports find them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from stadtpuls.fleet import apply, parse_text
from stadtpuls.ingest.codec_scripts import ScriptStoreError, add_script, current_scripts, known_codec_ids, sha256
from stadtpuls.ingest.codecs import QUANTITIES
from stadtpuls.ingest.codecs.script import ReadingsMap, ScriptCodec
from stadtpuls.ingest.codecs.script.examples import load_examples
from stadtpuls.ingest.registry import load_registry

SCRIPTS = Path(__file__).resolve().parents[1] / "data" / "scripts"
BIN = (SCRIPTS / "acme-bin.js").read_text()


def test_a_changed_script_becomes_a_new_version_and_the_old_one_is_kept(clean_db: str) -> None:
    examples = load_examples(SCRIPTS / "acme-bin.codec.yaml")
    readings = ReadingsMap.parse({"distance_mm": "distance_mm"})
    with psycopg.connect(clean_db) as conn:
        first, created = add_script(conn, "acme/bin", BIN, examples=examples, readings=readings)
        assert created and first.version == 1 and first.sha256 == sha256(BIN)
        assert first.examples == examples and first.f_ports == (1, 9)
        assert first.readings == {"distance_mm": {"field": "distance_mm"}}
        same, created = add_script(conn, "acme/bin", BIN)
        assert not created and same.version == 1 and same.examples == examples
        changed = BIN.replace("sensor tilted", "tilted")
        second, created = add_script(conn, "acme/bin", changed)
        assert created and second.version == 2 and second.sha256 == sha256(changed)
        assert second.examples == examples and second.readings == first.readings  # carried over
        assert current_scripts(conn)["acme/bin"].version == 2
        rows = conn.execute("SELECT version, sha256 FROM codec_scripts ORDER BY version").fetchall()
        assert rows == [(1, sha256(BIN)), (2, sha256(changed))]
        assert "acme/bin" in known_codec_ids(conn) and "bosch/tps110" in known_codec_ids(conn)


@pytest.mark.parametrize(
    ("codec_id", "source", "message"),
    [
        ("bosch/tps110", BIN, "a built-in codec has this id"),
        ("Acme Bin", BIN, "a codec id is vendor/model"),
        ("acme/broken", "function decodeUplink(input) {", "script does not load: SyntaxError"),
        ("acme/nothing", "var x = 1;", "neither decodeUplink"),
    ],
)
def test_a_script_that_cannot_be_used_is_not_stored(clean_db: str, codec_id: str, source: str, message: str) -> None:
    with psycopg.connect(clean_db) as conn:
        with pytest.raises(ScriptStoreError, match=message):
            add_script(conn, codec_id, source)
        assert conn.execute("SELECT count(*) FROM codec_scripts").fetchone() == (0,)


def test_registry_import_accepts_stored_script_codecs_and_rejects_unknown_ids(clean_db: str) -> None:
    doc = """
devices:
  - {dev_eui: "00000000000000a1", codec: acme/bin}
  - {dev_eui: "00000000000000a2", codec: acme/unknown}
"""
    with psycopg.connect(clean_db) as conn:
        report = apply(conn, parse_text(doc, "yaml"))
        assert [(e.row, e.field, e.message) for e in report.errors] == [
            (1, "codec", "unknown codec 'acme/bin'"),
            (2, "codec", "unknown codec 'acme/unknown'"),
        ]
        add_script(conn, "acme/bin", BIN)
        report = apply(conn, parse_text(doc, "yaml"))
        assert report.devices_created == 1
        assert [(e.row, e.message) for e in report.errors] == [(2, "unknown codec 'acme/unknown'")]


def test_registry_loads_the_current_version_and_reuses_loaded_scripts(clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn:
        add_script(conn, "acme/bin", BIN)
        apply(conn, parse_text('devices: [{dev_eui: "00000000000000b1", codec: acme/bin}]', "yaml"))
        first = load_registry(conn)
        codec = first.codecs[first.codec[first.by_eui[b"00000000000000b1"]]]
        assert isinstance(codec, ScriptCodec) and codec.version == 1
        again = load_registry(conn)
        assert again.codecs[0] is codec  # the loaded engine is reused across refreshes
        add_script(conn, "acme/bin", BIN + "\n// v2\n")
        newer = load_registry(conn).codecs[0]
        assert isinstance(newer, ScriptCodec) and newer.version == 2 and newer is not codec
        add_script(conn, "acme/bin", BIN + "\n// v2\n", readings=ReadingsMap.parse({"battery_v": "battery_mv"}))
        mapped = load_registry(conn).codecs[0]
        assert isinstance(mapped, ScriptCodec) and mapped.version == 2 and mapped.quantities == ("battery_v",)


def test_registry_yaml_sets_the_readings_map_of_a_script_codec(clean_db: str) -> None:
    doc = """
codecs:
  - id: acme/bin
    map: {distance_mm: distance_mm, battery_v: {field: battery_mv, scale: 0.001}}
  - id: acme/missing
    map: {occupied: state}
  - id: acme/bin
    map: {fill: level}
devices:
  - {dev_eui: "00000000000000f1", codec: acme/bin}
"""
    fleet = parse_text(doc, "yaml")
    assert [(e.section, e.row, e.field) for e in fleet.errors] == [("codecs", 3, "map")]
    with psycopg.connect(clean_db) as conn:
        add_script(conn, "acme/bin", BIN)
        report = apply(conn, fleet)
        assert report.codecs_updated == 1 and report.devices_created == 1
        assert sorted((e.section, e.row, e.message) for e in report.errors) == [
            ("codecs", 2, "no script codec 'acme/missing' is stored (stadtpuls codecs add)"),
            ("codecs", 3, "readings map: fill: not a hub quantity (known: " + ", ".join(QUANTITIES) + ")"),
        ]
        codec = load_registry(conn).codecs[0]
    assert isinstance(codec, ScriptCodec)
    assert set(codec.quantities) == {"distance_mm", "battery_v", "fill_pct"}
