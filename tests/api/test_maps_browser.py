"""The pages' maps in Debian's chromium (Playwright, headless), against the real ``stadtpuls api``.

Markers are checked against the Web Mercator projection computed here, colours against the cards beside the map,
live updates without reload, keyboard selection, "near me" with a browser position, the bus lines through their
stops, and the tiles: none by default in the tests (plain background), from a local tile server when the settings
name one (with its attribution and the CSP admitting it), and a page that stays usable when tiles fail.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules beside the tests (tests are not a package)
from pagestest import (  # noqa: E402
    ARTIFACTS,
    LOTS,
    Publisher,
    api_service,
    free_port,
    new_page,
    start_api,
    wait_for,
)

pytestmark = pytest.mark.browser

WIDTHS = (360, 1280)
# a 1x1 PNG (transparent) that the local tile server answers every tile with
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def world_px(lat: float, lon: float, z: int) -> tuple[float, float]:
    size = 256 * 2**z
    s = math.sin(math.radians(lat))
    return (lon + 180) / 360 * size, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * size


def markers(page: Any, selector: str) -> list[dict[str, Any]]:
    """Each marker's id, level, text and centre relative to the map's top left, plus the map's zoom."""
    out: list[dict[str, Any]] = page.eval_on_selector_all(
        selector,
        """els => els.map(g => {
            const map = g.closest('.tile-map').getBoundingClientRect();
            const b = g.querySelector('circle, rect').getBoundingClientRect();
            return {id: g.dataset.id, level: g.dataset.level, text: g.querySelector('text')?.textContent ?? null,
                    x: b.x + b.width / 2 - map.x, y: b.y + b.height / 2 - map.y,
                    zoom: Number(g.closest('.tile-map').dataset.zoom)};
        })""",
    )
    return out


def assert_projected(placed: list[dict[str, Any]], where: dict[str, tuple[float, float]]) -> None:
    """Screen offsets between markers equal the Web Mercator offsets at the map's zoom (within a pixel)."""
    first = placed[0]
    fx, fy = world_px(*where[first["id"]], first["zoom"])
    for m in placed[1:]:
        wx, wy = world_px(*where[m["id"]], m["zoom"])
        assert abs((m["x"] - first["x"]) - (wx - fx)) <= 1.5, (m, first)
        assert abs((m["y"] - first["y"]) - (wy - fy)) <= 1.5, (m, first)


@pytest.mark.parametrize("width", WIDTHS)
def test_parking_map_puts_every_lot_at_its_place_with_the_cards_figures(browser: Any, api: str, width: int) -> None:
    context, page, problems = new_page(browser, api, width)
    page.goto(api + "/parking")
    page.wait_for_selector('#status[data-state="live"]')
    lots = {lot["lot_id"]: lot for lot in httpx.get(api + "/api/v1/parking/lots").json()["data"]}
    wait_for(lambda: page.locator("#lots-map g.lot").count() == len(LOTS), 10, "a marker per lot")
    placed = markers(page, "#lots-map g.lot")
    assert_projected(placed, {i: (lot["lat"], lot["lon"]) for i, lot in lots.items()})
    for m in placed:  # the map says what the card says: the free spaces as text, the level as colour
        card = page.locator(f'li.lot[data-lot-id="{m["id"]}"]')
        assert m["text"] == str(lots[m["id"]]["free"]) == card.locator(".free-count").inner_text()
        assert m["level"] == card.get_attribute("data-level")
        assert 0 <= m["x"] <= page.locator("#lots-map").bounding_box()["width"]  # every lot in view
    assert page.locator("#lots-map").get_attribute("data-tiles") == "off"
    assert page.locator("#lots-map .tiles img").count() == 0  # no tile requests at all
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / f"parking-map-{width}.png"), full_page=True)
    assert problems == []  # nothing requested from another origin, no script or console error
    context.close()


def test_parking_map_by_keyboard_and_tap_shows_the_card(browser: Any, api: str) -> None:
    context, page, problems = new_page(browser, api, 1280)
    page.goto(api + "/parking")
    wait_for(lambda: page.locator("#lots-map g.lot").count() == len(LOTS), 10, "markers")
    last = LOTS[-1][0]
    page.locator(f'#lots-map g.lot[data-id="{last}"]').focus()
    page.keyboard.press("Enter")
    wait_for(lambda: page.evaluate("document.activeElement.dataset.lotId") == last, 5, "card focused")
    assert page.locator(f'li.lot[data-lot-id="{last}"]').get_attribute("class").split().count("selected") == 1
    first = LOTS[0][0]
    page.locator(f'#lots-map g.lot[data-id="{first}"]').click()
    wait_for(lambda: page.evaluate("document.activeElement.dataset.lotId") == first, 5, "card of the tapped lot")
    assert page.locator("li.lot.selected").count() == 1
    zoom = int(page.locator("#lots-map").get_attribute("data-zoom"))
    page.locator("#lots-map").focus()
    page.keyboard.press("-")
    assert int(page.locator("#lots-map").get_attribute("data-zoom")) == zoom - 1
    before = markers(page, "#lots-map g.lot")[0]
    page.keyboard.press("ArrowRight")  # the view moves right, so the markers move left
    after = markers(page, "#lots-map g.lot")[0]
    assert after["x"] < before["x"] and abs(after["y"] - before["y"]) < 0.5
    assert problems == []
    context.close()


def test_parking_map_changes_colour_and_figure_live_without_reload(browser: Any, api: str, ingest: Publisher) -> None:
    context, page, problems = new_page(browser, api, 1280)
    page.goto(api + "/parking")
    page.wait_for_selector('#status[data-state="live"]')
    lot_id, _, spaces, _ = LOTS[1]
    wait_for(lambda: page.locator(f'#lots-map g.lot[data-id="{lot_id}"]').count() == 1, 10, "marker")
    page.evaluate("window.__sameDocument = true")
    marker = page.locator(f'#lots-map g.lot[data-id="{lot_id}"]')
    for space in range(spaces):  # every space of the lot taken: the marker turns "full" and shows 0
        ingest.parking(1, space, True)
    wait_for(lambda: marker.get_attribute("data-level") == "full", 20, "marker turned full")
    assert marker.locator("text").text_content() == "0"
    assert page.locator(f'li.lot[data-lot-id="{lot_id}"]').get_attribute("data-level") == "full"
    for space in range(spaces):
        ingest.parking(1, space, False)
    wait_for(lambda: marker.get_attribute("data-level") == "many", 20, "marker free again")
    assert marker.locator("text").text_content() == str(spaces)
    assert page.evaluate("window.__sameDocument") is True
    assert problems == []
    context.close()


def test_near_me_asks_for_the_position_only_on_the_button_and_sorts_by_distance(browser: Any, api: str) -> None:
    lots = {lot["lot_id"]: lot for lot in httpx.get(api + "/api/v1/parking/lots").json()["data"]}
    far = max(LOTS, key=lambda lot: lot[1])[0]  # stand next to the lot listed last by name
    context = browser.new_context(
        viewport={"width": 360, "height": 800},
        locale="en-GB",
        geolocation={"latitude": lots[far]["lat"] + 0.0005, "longitude": lots[far]["lon"]},
        permissions=["geolocation"],
    )
    page = context.new_page()
    page.add_init_script(  # count every request for the position
        """window.__geoCalls = 0;
        for (const name of ['getCurrentPosition', 'watchPosition']) {
            const original = navigator.geolocation[name].bind(navigator.geolocation);
            navigator.geolocation[name] = (...args) => { window.__geoCalls += 1; return original(...args); };
        }"""
    )
    page.goto(api + "/parking")
    wait_for(lambda: page.locator("li.lot").count() == len(LOTS), 10, "cards")
    assert page.locator("#lots-map g.you").count() == 0
    assert page.evaluate("document.querySelector('li.lot').dataset.lotId") != far  # by name, not distance
    page.wait_for_timeout(500)
    assert page.evaluate("window.__geoCalls") == 0  # nothing has asked for the position yet
    page.click("#near")
    wait_for(lambda: page.locator("#lots-map g.you").count() == 1, 10, "own position on the map")
    order = page.eval_on_selector_all("li.lot", "els => els.map(e => e.dataset.lotId)")
    here = (lots[far]["lat"] + 0.0005, lots[far]["lon"])

    def km(lot_id: str) -> float:
        lat, lon = lots[lot_id]["lat"], lots[lot_id]["lon"]
        dy = math.radians(lat - here[0]) * 6371.0
        dx = math.radians(lon - here[1]) * 6371.0 * math.cos(math.radians(here[0]))
        return math.hypot(dx, dy)

    assert order == sorted(order, key=km) and order[0] == far
    assert "km away" in page.locator(f'li.lot[data-lot-id="{far}"] .distance').inner_text()
    assert "distance" in page.locator("#near-message").inner_text()
    assert page.evaluate("window.__geoCalls") == 1
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_bus_map_draws_the_line_through_its_stops_and_each_bus_at_its_last_stop(
    browser: Any, api: str, width: int
) -> None:
    context, page, problems = new_page(browser, api, width)
    page.goto(api + "/buses")
    page.wait_for_selector('#status[data-state="live"]')
    stops = httpx.get(api + "/api/v1/buses/stops").json()["data"]
    assert [s["stop_id"] for s in stops] == ["line-5-0", "line-5-1", "line-5-2"]
    vehicles = {
        v["vehicle_id"]: v
        for v in httpx.get(api + "/api/v1/buses/vehicles").json()["data"]
        if v["in_service"] and v["stop_id"]
    }
    assert vehicles, "the seeded city has buses counted at a stop"
    wait_for(lambda: page.locator("#bus-map g.bus-stop").count() == 3, 10, "stops on the map")
    wait_for(lambda: page.locator("#bus-map g.vehicle").count() == len(vehicles), 10, "each bus on the map")
    assert page.locator("#bus-map path.bus-line").count() == 1
    stop_marks = page.eval_on_selector_all(
        "#bus-map g.bus-stop",
        """els => els.map(g => { const b = g.querySelector('circle').getBoundingClientRect();
            return [b.x + b.width / 2, b.y + b.height / 2]; })""",
    )
    # the stop markers follow the line's order, and so does the line's path through them
    path = page.locator("#bus-map path.bus-line").get_attribute("d")
    nodes = [tuple(map(float, step[1:].split(","))) for step in path.split()]
    box = page.locator("#bus-map svg").bounding_box()
    assert len(nodes) == len(stop_marks)
    for (x, y), (sx, sy) in zip(nodes, stop_marks, strict=True):
        assert abs(x + box["x"] - sx) < 1.0 and abs(y + box["y"] - sy) < 1.0
    buses = page.eval_on_selector_all(
        "#bus-map g.vehicle",
        """els => els.map(g => { const b = g.querySelector('circle').getBoundingClientRect();
            return {id: g.dataset.id, x: b.x + b.width / 2, y: b.y + b.height / 2, level: g.dataset.level,
                    text: g.querySelector('text').textContent}; })""",
    )
    order = [s["stop_id"] for s in stops]
    for bus in buses:
        v = vehicles[bus["id"]]
        nearest = min(range(len(stop_marks)), key=lambda k: math.dist((bus["x"], bus["y"]), stop_marks[k]))
        assert order[nearest] == v["stop_id"]  # at its last stop
        pct = v["occupancy_pct"]
        assert bus["level"] == ("none" if pct is None else "full" if pct >= 80 else "few" if pct >= 50 else "many")
        assert bus["text"] == ("–" if pct is None else str(round(pct)))
    first = buses[0]["id"]
    page.locator(f'#bus-map g.vehicle[data-id="{first}"]').click()
    wait_for(lambda: page.evaluate("document.activeElement.dataset.vehicleId") == first, 5, "the bus's entry")
    page.screenshot(path=str(ARTIFACTS / f"buses-map-{width}.png"), full_page=True)
    assert problems == []
    context.close()


class _Tiles(BaseHTTPRequestHandler):
    requested: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        _Tiles.requested.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def tile_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tiles_and_attribution_come_from_the_settings(
    browser: Any, city: str, tile_server: str, tmp_path: Path
) -> None:
    template = tile_server + "/osm/{z}/{x}/{y}.png"
    service, base = api_service(
        city, tmp_path, MAP_TILE_URL=template, MAP_ATTRIBUTION="© Stadt Test, OSM", MAP_ATTRIBUTION_URL=tile_server
    )
    start_api(service, base)
    try:
        config = httpx.get(base + "/api/v1/map").json()
        assert config["tiles"] is True and config["tile_url"] == template
        csp = httpx.get(base + "/parking").headers["content-security-policy"]
        assert f"img-src 'self' data: {tile_server};" in csp
        _Tiles.requested.clear()
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        page = context.new_page()
        page.goto(base + "/parking")
        wait_for(lambda: page.locator("#lots-map g.lot").count() == len(LOTS), 10, "markers")
        wait_for(
            lambda: page.evaluate(
                "[...document.querySelectorAll('#lots-map .tiles img')].some(i => i.complete && i.naturalWidth > 0)"
            ),
            10,
            "tiles loaded",
        )
        zoom = int(page.locator("#lots-map").get_attribute("data-zoom"))
        srcs = page.eval_on_selector_all("#lots-map .tiles img", "els => els.map(e => e.getAttribute('src'))")
        assert srcs and all(s.startswith(tile_server + f"/osm/{zoom}/") for s in srcs)
        assert any(p.startswith(f"/osm/{zoom}/") for p in _Tiles.requested)
        attribution = page.locator("#lots-map .attribution")
        assert attribution.is_visible() and attribution.inner_text() == "© Stadt Test, OSM"
        assert attribution.locator("a").get_attribute("href") == tile_server
        context.close()
    finally:
        service.stop()


def test_pages_stay_usable_when_the_tiles_cannot_load(browser: Any, city: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png"  # nothing listens there
    service, base = api_service(city, tmp_path, MAP_TILE_URL=dead)
    start_api(service, base)
    try:
        context = browser.new_context(viewport={"width": 360, "height": 800}, locale="en-GB")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/parking")
        page.wait_for_selector('#status[data-state="live"]')
        wait_for(lambda: page.locator("#lots-map g.lot").count() == len(LOTS), 10, "markers without tiles")
        wait_for(
            lambda: page.evaluate("[...document.querySelectorAll('#lots-map .tiles img')].every(i => i.hidden)"),
            10,
            "failed tiles hidden",
        )
        assert page.locator("li.lot").count() == len(LOTS)
        page.locator(f'#lots-map g.lot[data-id="{LOTS[0][0]}"]').click()
        assert page.locator("li.lot.selected").count() == 1
        assert errors == []
        context.close()
    finally:
        service.stop()


@pytest.fixture(scope="module")
def week_api(new_database: Any, project_broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API over a simulated week of the small town (every model), stored by the real ingest."""
    from test_simulated_week import _simulate

    week = _simulate(
        new_database(),
        project_broker.url,
        tmp_path_factory.mktemp("spool"),
        "small",
        ("waste", "parking", "buses", "environment"),
    )
    service, base = api_service(week.url, tmp_path_factory.mktemp("api"))
    start_api(service, base)
    try:
        yield base
    finally:
        service.stop()


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first one builds the week
@pytest.mark.parametrize("width", WIDTHS)
def test_maps_of_a_simulated_week_agree_with_the_lists(browser: Any, week_api: str, width: int) -> None:
    context, page, problems = new_page(browser, week_api, width)
    lots = {lot["lot_id"]: lot for lot in httpx.get(week_api + "/api/v1/parking/lots").json()["data"]}
    assert len(lots) >= 2
    page.goto(week_api + "/parking")
    wait_for(lambda: page.locator("#lots-map g.lot").count() == len(lots), 15, "a marker per lot of the town")
    placed = markers(page, "#lots-map g.lot")
    assert_projected(placed, {i: (lot["lat"], lot["lon"]) for i, lot in lots.items()})
    width_px = page.locator("#lots-map").bounding_box()["width"]
    for m in placed:
        card = page.locator(f'li.lot[data-lot-id="{m["id"]}"]')
        assert m["text"] == card.locator(".free-count").inner_text() == str(lots[m["id"]]["free"])
        assert m["level"] == card.get_attribute("data-level")
        assert 0 <= m["x"] <= width_px
    page.screenshot(path=str(ARTIFACTS / f"parking-map-week-{width}.png"), full_page=True)

    stops = httpx.get(week_api + "/api/v1/buses/stops").json()["data"]
    lines = {s["line_id"] for s in stops if s["line_id"] and s["lat"] is not None}
    page.goto(week_api + "/buses")
    wait_for(lambda: page.locator("#bus-map g.bus-stop").count() == len(stops), 15, "every stop on the map")
    assert page.locator("#bus-map path.bus-line").count() == len(lines)
    placed_stops = markers(page, "#bus-map g.bus-stop")
    assert_projected(placed_stops, {s["stop_id"]: (s["lat"], s["lon"]) for s in stops})
    page.screenshot(path=str(ARTIFACTS / f"buses-map-week-{width}.png"), full_page=True)
    assert problems == []
    context.close()
