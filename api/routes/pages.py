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
"""

from __future__ import annotations

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

from ..deps import tenant_of_request
from ..problems import Problem
from ..tenancy import Tenant

__all__ = ["PAGES", "STATIC_DIR", "brand_text_colour", "page_headers", "router", "tile_origin", "town_page"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGES = {
    "/": "parking.html",
    "/parking": "parking.html",
    "/buses": "buses.html",
    "/operator/pickups": "pickups.html",
    "/operator/alerts": "alerts.html",
    "/district": "district.html",
}
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
    text = (STATIC_DIR / filename).read_text(encoding="utf-8")
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
            return FileResponse(
                STATIC_DIR / filename,
                media_type=MEDIA_TYPES[".html"],
                headers={**page_headers(settings), "Cache-Control": "no-cache"},
            )
        headers = page_headers(settings, images=_logo_origin(town.logo_url))
        body = town_page(filename, town.slug, town.title, town.logo_url, town.colour)
        return Response(body, media_type=MEDIA_TYPES[".html"], headers={**headers, "Cache-Control": "no-cache"})

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
    if town is not None and town.colour and re.fullmatch(r"#[0-9a-fA-F]{6}", town.colour):
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
