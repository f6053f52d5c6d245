"""Web pages for citizens and operators: static HTML, CSS and JavaScript from ``api/static`` (no build step).

``/`` and ``/parking`` (free spaces, live), ``/buses`` (occupancy per line), ``/operator/pickups`` (the pickup plan)
and ``/operator/alerts`` (alerts; operator pages are public, their data needs the operator key, which the page
sends as ``X-API-Key``). Pages load nothing
from other origins but the map tiles of ``STADTPULS_MAP_TILE_URL`` (none when it is empty), and the
Content-Security-Policy says so. ``GET /api/v1/map`` (routes/map.py) tells the maps where their tiles come from.

A town's pages (``/t/{slug}/parking``, ``/t/{slug}/buses``, ``/t/{slug}/operator/...``) are the same files made
the town's (:func:`town_page`): its name (``brand_name``, else ``name``) in the title and header, its logo, its
colour in ``/t/{slug}/town.css`` (a CSS custom property; no inline style, which the CSP forbids), and every link to
a page or feed under the town's prefix. Their JavaScript finds the town in its own path (``static/town.js``). An
unknown town is a 404 page. ``/district`` shows every town with its live figures (routes/district.py).

A page's file holds what is its own (title, script, main part, footer); :func:`page_html` adds what every page
shares: the head's meta and style lines, the skip link and the site header with the public or the operator
navigation, the page's own link marked current, and on the operator pages the key's form.
"""

from __future__ import annotations

import hashlib
import html
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from stadtpuls.settings import Settings
from stadtpuls.tenants import COLOUR_PATTERN

from ..deps import tenant_of_request
from ..problems import Problem
from ..tenancy import Tenant

__all__ = [
    "PAGES",
    "STATIC_DIR",
    "brand_text_colour",
    "page_headers",
    "page_html",
    "router",
    "tile_origin",
    "town_page",
]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGES = {
    "/": "parking.html",
    "/parking": "parking.html",
    "/buses": "buses.html",
    "/operator/pickups": "pickups.html",
    "/operator/alerts": "alerts.html",
    "/district": "district.html",
}
#: a menu link's path -> its i18n key and English text; the public pages' menu and the operator pages'
_NAV_LINKS = {
    "/parking": ("nav.parking", "Parking"),
    "/buses": ("nav.buses", "Buses"),
    "/district": ("nav.district", "Every town"),
    "/operator/pickups": ("nav.pickups", "Waste pickups"),
    "/operator/alerts": ("nav.alerts", "Alerts"),
}
_PUBLIC_NAV = ("/parking", "/buses", "/district")
_OPERATOR_NAV = ("/parking", "/buses", "/operator/pickups", "/operator/alerts")
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP.format(tiles=""),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


def tile_origin(template: str) -> str:
    """The origin a tile URL template loads from, as a CSP source (``{s}`` subdomains become ``*``); '' for none."""
    if not template:
        return ""
    parts = urlsplit(template.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}"


def page_headers(settings: Settings, *, images: str = "") -> dict[str, str]:
    """Security headers of a page: the CSP admits images from the tile server (and ``images``, a town's logo
    origin), and nothing else from elsewhere."""
    origin = tile_origin(settings.map_tile_url)
    tiles = (f" {origin}" if origin else "") + images
    return {**SECURITY_HEADERS, "Content-Security-Policy": CSP.format(tiles=tiles)}


_META = """\
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light">
  <meta name="application-name" content="stadtpuls">
"""
_STYLE = """\
  <link rel="icon" href="/static/icon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/app.css">
"""
_HEADER = """\
  <a class="skip" href="#main" data-i18n="skip">Skip to content</a>
  <header class="site-header">
    <div class="inner">
      <a class="brand" href="/"><img src="/static/icon.svg" alt="" width="26" height="26"> stadtpuls</a>
      <nav class="site-nav" data-i18n-attr="aria-label:nav.label" aria-label="Main">
        <ul>
{links}        </ul>
      </nav>
    </div>
  </header>
"""
_BODY = re.compile(r"<body[^>]*>\n")
#: the operator key's form (``static/operator-key.js``), where an operator page has it empty
_KEY_FORM_PLACE = '<form id="key-form" class="panel" autocomplete="off"></form>\n'
_KEY_FORM = """\
<form id="key-form" class="panel" autocomplete="off">
      <div class="row">
        <div class="field" id="key-entry">
          <label for="key" data-i18n="pickups.key">Operator key</label>
          <input id="key" name="key" type="password" autocomplete="off" spellcheck="false" autocapitalize="off">
        </div>
        <button type="submit" id="key-save" data-i18n="pickups.key.save">Use key</button>
        <button type="button" id="key-forget" class="secondary" data-i18n="pickups.key.forget">Forget key</button>
      </div>
      <p id="key-message" class="message" role="status"></p>
    </form>
"""


def _nav(own: str) -> str:
    """The menu's items, ``own`` (a page's path) marked current."""
    items = []
    for path in _OPERATOR_NAV if own.startswith("/operator/") else _PUBLIC_NAV:
        key, text = _NAV_LINKS[path]
        current = ' aria-current="page"' if path == own else ""
        items.append(f'          <li><a href="{path}"{current} data-i18n="{key}">{text}</a></li>\n')
    return "".join(items)


@lru_cache(maxsize=len(PAGES))
def page_html(filename: str) -> str:
    """A page of ``api/static`` with the head lines and the header every page shares (and the operator key's form
    where the page has an empty one)."""
    own = next(path for path, name in PAGES.items() if name == filename and path != "/")
    text = (STATIC_DIR / filename).read_text(encoding="utf-8")
    text = text.replace("<head>\n", "<head>\n" + _META, 1).replace("</title>\n", "</title>\n" + _STYLE, 1)
    text = text.replace(_KEY_FORM_PLACE, _KEY_FORM, 1)
    return _BODY.sub(lambda m: m.group(0) + _HEADER.format(links=_nav(own)), text, count=1)


_LINK = re.compile(r'href="/(?=parking"|buses"|operator/|api/public/)')
_BRAND = re.compile(r'<a class="brand" href="/">.*?</a>', re.S)
_DEFAULT_NAME = "stadtpuls"


def brand_text_colour(colour: str) -> str:
    """White or near-black, whichever reads better on ``colour`` (``#rrggbb``) by the WCAG contrast ratio."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    dark = 0.0137  # relative luminance of #1b2128, the pages' text colour
    return "#ffffff" if (1.05 / (lum + 0.05)) >= ((lum + 0.05) / (dark + 0.05)) else "#1b2128"


@lru_cache(maxsize=256)
def town_page(filename: str, slug: str, title: str, logo_url: str | None, colour: str | None) -> bytes:
    """A page of ``api/static`` made one town's: name, logo, colour sheet and links under ``/t/{slug}`` (every
    town field escaped: they are the operators' text)."""
    text = page_html(filename)
    name = html.escape(title)
    prefix = f"/t/{slug}"
    text = text.replace(" · stadtpuls</title>", f" · {name}</title>", 1)
    text = text.replace(
        f'<meta name="application-name" content="{_DEFAULT_NAME}">',
        f'<meta name="application-name" content="{name}">',
        1,
    )
    logo = html.escape(logo_url) if logo_url else "/static/icon.svg"
    brand = f'<a class="brand" href="{prefix}/parking"><img src="{logo}" alt="" height="26"> {name}</a>'
    text = _BRAND.sub(lambda _: brand, text, count=1)
    text = _LINK.sub(f'href="{prefix}/', text)
    if colour:
        sheet = '<link rel="stylesheet" href="/static/app.css">'
        text = text.replace(sheet, f'{sheet}\n  <link rel="stylesheet" href="{prefix}/town.css">', 1)
    return text.encode()


async def _town(request: Request) -> Tenant | None | Response:
    """The path's town; None without a prefix; a 404 page for a town the hub does not have."""
    try:
        return await tenant_of_request(request, request.app.state.ctx)
    except Problem:
        slug = str(getattr(request.state, "tenant", ""))
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>No such town · stadtpuls</title>'
            '<link rel="stylesheet" href="/static/app.css"></head><body><main id="main"><h1>No such town</h1>'
            f"<p>This hub has no town {html.escape(slug)}.</p>"
            '<p><a href="/district">Every town of this hub</a></p></main></body></html>'
        )
        return Response(body, 404, media_type=MEDIA_TYPES[".html"], headers=SECURITY_HEADERS)


def _logo_origin(logo_url: str | None) -> str:
    if not logo_url or not logo_url.startswith("https://"):
        return ""
    parts = urlsplit(logo_url)
    return f" {parts.scheme}://{parts.netloc}"


def _page_route(path: str, filename: str) -> None:
    async def page(request: Request) -> Response:
        settings = request.app.state.ctx.settings
        town = await _town(request)
        if isinstance(town, Response):
            return town
        if town is None:
            headers, body = page_headers(settings), page_html(filename).encode()
        else:
            headers = page_headers(settings, images=_logo_origin(town.logo_url))
            body = town_page(filename, town.slug, town.title, town.logo_url, town.colour)
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        headers = {**headers, "Cache-Control": "no-cache", "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):  # the browser's copy is current: no body
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=MEDIA_TYPES[".html"], headers=headers)

    page.__name__ = "page_" + (path.strip("/").replace("/", "_") or "index")
    router.add_api_route(path, page, methods=["GET", "HEAD"], response_class=Response)


for _path, _file in PAGES.items():
    _page_route(_path, _file)


@router.get("/town.css")
async def town_css(request: Request) -> Response:
    """The path's town's colour as the pages' ``--brand`` (and a text colour that reads on it); empty without one."""
    town = await _town(request)
    if isinstance(town, Response):
        return town
    css = ""
    if town is not None and town.colour and re.fullmatch(COLOUR_PATTERN, town.colour):
        css = f":root {{ --brand: {town.colour}; --brand-text: {brand_text_colour(town.colour)}; }}\n"
    return Response(css, media_type=MEDIA_TYPES[".css"], headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/static/{name}")
async def static_file(name: Annotated[str, PathParam(max_length=64, pattern=r"^[a-z0-9_-]+\.[a-z]+$")]) -> FileResponse:
    """A file of ``api/static`` by its plain name (no directories, known types only)."""
    path = STATIC_DIR / name
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_file():
        raise Problem(404, f"no static file {name!r}")
    return FileResponse(path, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
