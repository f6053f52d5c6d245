"""``stadtpuls tenants add|update|list`` against the real database, and a town's effective settings."""

from __future__ import annotations

import orjson
import psycopg
import pytest

from stadtpuls.cli import main
from stadtpuls.settings import load
from stadtpuls.tenants import Depot, TenantRecord, effective, get, parse_depot


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *argv: str) -> int:
    monkeypatch.setenv("STADTPULS_DATABASE_URL", url)
    return main(["tenants", *argv])


def _row(url: str, slug: str) -> tuple[object, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT name, timezone, depots, service_days, pickup_start_hour, brand_name, logo_url, colour"
            " FROM tenants WHERE slug = %s",
            (slug,),
        ).fetchone()


def test_add_stores_every_field_and_list_shows_the_town(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _cli(
        monkeypatch,
        clean_db,
        "add",
        "nordstadt",
        "--name",
        "Nordstadt",
        "--timezone",
        "Europe/Vienna",
        "--depot",
        "Hof Nord:51.40,12.30",
        "--depot",
        "Recyclinghof: Ost:51.41,12.45",
        "--service-days",
        "4,0,2",
        "--pickup-start-hour",
        "6.5",
        "--brand-name",
        "Nordstadt bewegt",
        "--logo-url",
        "https://example.org/logo.svg",
        "--colour",
        "#1A6B3C",
    )
    assert code == 0
    assert "added tenant nordstadt" in capsys.readouterr().out
    assert _row(clean_db, "nordstadt") == (
        "Nordstadt",
        "Europe/Vienna",
        [{"name": "Hof Nord", "lat": 51.4, "lon": 12.3}, {"name": "Recyclinghof: Ost", "lat": 51.41, "lon": 12.45}],
        [0, 2, 4],
        6.5,
        "Nordstadt bewegt",
        "https://example.org/logo.svg",
        "#1a6b3c",
    )
    assert _cli(monkeypatch, clean_db, "list", "--json") == 0
    listed = {t["slug"]: t for t in orjson.loads(capsys.readouterr().out)}
    assert set(listed) == {"default", "nordstadt"}
    assert listed["nordstadt"]["service_days"] == [0, 2, 4] and listed["nordstadt"]["sites"] == 0
    assert _cli(monkeypatch, clean_db, "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("SLUG") and any(line.startswith("nordstadt") for line in table[1:])


def test_update_changes_given_fields_and_empty_text_restores_the_hub_setting(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(monkeypatch, clean_db, "add", "sued", "--name", "Süd", "--timezone", "Europe/Zurich") == 0
    assert _cli(monkeypatch, clean_db, "update", "sued", "--colour", "#aa0000", "--pickup-start-hour", "5") == 0
    assert _row(clean_db, "sued") == ("Süd", "Europe/Zurich", None, None, 5.0, None, None, "#aa0000")
    assert _cli(monkeypatch, clean_db, "update", "sued", "--timezone", "", "--depot", "") == 0
    assert _row(clean_db, "sued") == ("Süd", None, None, None, 5.0, None, None, "#aa0000")
    assert "updated tenant sued" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["add", "Nord Stadt", "--name", "N"], "slug"),
        (["add", "nord_stadt", "--name", "N"], "slug"),
        (["add", "n" * 41, "--name", "N"], "slug"),
        (["add", "nord", "--name", "N", "--colour", "green"], "colour"),
        (["add", "nord", "--name", "N", "--colour", "#12345"], "colour"),
        (["add", "nord", "--name", "N", "--timezone", "Europe/Atlantis"], "unknown time zone"),
        (["add", "nord", "--name", "N", "--service-days", "1,7"], "service_days"),
        (["add", "nord", "--name", "N", "--service-days", "mon"], "service days"),
        (["add", "nord", "--name", "N", "--pickup-start-hour", "24"], "pickup_start_hour"),
        (["add", "nord", "--name", "N", "--depot", "Hof:95,12"], "NAME:LAT,LON"),
        (["add", "nord", "--name", "N", "--depot", "Hof"], "NAME:LAT,LON"),
        (["add", "nord", "--name", "N", "--logo-url", "javascript:alert(1)"], "logo_url"),
        (["add", "nord", "--name", "N\x1b[31m"], "name"),
        (["add", "nord", "--name", ""], "name"),
        (["update", "nowhere", "--name", "X"], "no tenant 'nowhere'"),
        (["update", "default", "--name", ""], "name"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2_and_writes_nothing(
    clean_db: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert _cli(monkeypatch, clean_db, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT array_agg(slug::text), max(name) FROM tenants").fetchone() == (
            ["default"],
            "default",
        )


def test_a_duplicate_slug_is_refused(
    clean_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(monkeypatch, clean_db, "add", "nord", "--name", "Nord") == 0
    assert _cli(monkeypatch, clean_db, "add", "nord", "--name", "Other") == 2
    assert "tenant 'nord' exists already" in capsys.readouterr().err
    assert _row(clean_db, "nord") == ("Nord", None, None, None, None, None, None, None)


def test_effective_takes_the_hub_settings_where_the_town_has_none(clean_db: str) -> None:
    settings = load(
        timezone="Europe/Berlin", depot_lat=51.0, depot_lon=12.0, service_days=[1, 3], pickup_start_hour=7.0
    )
    with psycopg.connect(clean_db) as conn:
        default = get(conn, "default")
    assert default is not None
    hub = effective(default, settings)
    assert (hub.timezone, hub.depots, hub.service_days, hub.pickup_start_hour) == (
        "Europe/Berlin",
        [Depot("depot", 51.0, 12.0)],
        [1, 3],
        7.0,
    )
    own = TenantRecord(
        "nord", "Nord", "Europe/Vienna", [Depot("Hof", 50.0, 11.0)], [5], pickup_start_hour=0.0
    )  # 0.0 is midnight, not "unset"
    town = effective(own, settings)
    assert (town.timezone, town.depots, town.service_days, town.pickup_start_hour) == (
        "Europe/Vienna",
        [Depot("Hof", 50.0, 11.0)],
        [5],
        0.0,
    )


def test_parse_depot_keeps_colons_in_the_name() -> None:
    assert parse_depot("Hof: Nord:51.5,-0.1") == Depot("Hof: Nord", 51.5, -0.1)
    with pytest.raises(ValueError, match="NAME:LAT,LON"):
        parse_depot(":51,12")
