"""The public pages link the three open-data feeds in their footer, and every link answers."""

from __future__ import annotations

import re

import pytest
from apitest import ApiClient, make_settings


@pytest.mark.parametrize("page", ["/parking", "/buses"])
def test_public_pages_link_every_feed(client: ApiClient, page: str) -> None:
    html = client.get(page).text
    footer = html[html.index("<footer") : html.index("</footer>")]
    links = re.findall(r'href="(/api/public/[^"]+)"', footer)
    assert {link.split("?")[0] for link in links} == {
        "/api/public/v3/parking-sites",
        "/api/public/datex2/json",
        "/api/public/gtfs-rt/vehicle-positions.pb",
    }
    for link in links:
        r = client.get(link.replace("&amp;", "&"))
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", link


@pytest.mark.parametrize(
    "url", ["/api/public/v3/parking-sites", "/api/public/datex2/json", "/api/public/gtfs-rt/vehicle-positions.pb"]
)
def test_feeds_are_rate_limited_like_the_other_public_routes(make_client, clean_db: str, url: str) -> None:
    api = make_client(make_settings(clean_db, rate_limit_per_minute=3))
    assert [api.get(url).status_code for _ in range(3)] == [200, 200, 200]
    r = api.get(url)
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) >= 1
