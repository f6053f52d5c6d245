"""The maps' tile settings: what ``GET /api/v1/map`` tells the pages, the pages' CSP, and bad templates refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from apitest import ApiClient, make_settings
from pydantic import ValidationError

from stadtpuls.settings import Settings


def test_default_tiles_are_openstreetmap_with_its_attribution_and_the_csp_admits_only_that_origin(
    clean_db: str, make_client: Callable[..., ApiClient]
) -> None:
    c = make_client(make_settings(clean_db))
    config = c.get("/api/v1/map").json()
    assert config == {
        "tiles": True,
        "tile_url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "attribution": "© OpenStreetMap contributors",
        "attribution_url": "https://www.openstreetmap.org/copyright",
        "max_zoom": 19,
    }
    for page in ("/parking", "/buses", "/operator/pickups"):
        csp = c.get(page).headers["content-security-policy"]
        assert "img-src 'self' data: https://tile.openstreetmap.org;" in csp
        assert "connect-src 'self';" in csp and "script-src 'self';" in csp


def test_no_tiles_when_the_setting_is_empty(clean_db: str, make_client: Callable[..., ApiClient]) -> None:
    c = make_client(make_settings(clean_db, map_tile_url=""))
    assert c.get("/api/v1/map").json()["tiles"] is False
    assert "img-src 'self' data:;" in c.get("/parking").headers["content-security-policy"]


def test_subdomain_templates_are_admitted_as_a_wildcard_host(
    clean_db: str, make_client: Callable[..., ApiClient]
) -> None:
    c = make_client(make_settings(clean_db, map_tile_url="https://{s}.tiles.example.org/{z}/{x}/{y}.png"))
    assert "img-src 'self' data: https://*.tiles.example.org;" in c.get("/").headers["content-security-policy"]


@pytest.mark.parametrize(
    "template",
    ["tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tiles.example.org/{z}/{x}.png", "javascript:{z}{x}{y}"],
)
def test_a_template_without_scheme_or_placeholders_is_refused(template: str) -> None:
    with pytest.raises(ValidationError, match="map_tile_url"):
        Settings(map_tile_url=template)
