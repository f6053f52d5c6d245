"""The public pages link the three open-data feeds in their footer, and every link answers."""

from __future__ import annotations

import re

import pytest
from apitest import ApiClient


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
