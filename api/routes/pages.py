"""Web pages for citizens and operators: static HTML, CSS and JavaScript from ``api/static`` (no build step).

``/`` and ``/parking`` (free spaces, live), ``/buses`` (occupancy per line), ``/operator/pickups`` (the pickup plan)
and ``/operator/alerts`` (alerts; operator pages are public, their data needs the operator key, which the page
sends as ``X-API-Key``). Pages load nothing
from other origins but the map tiles of ``STADTPULS_MAP_TILE_URL`` (none when it is empty), and the
Content-Security-Policy says so. ``GET /api/v1/map`` (routes/map.py) tells the maps where their tiles come from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from stadtpuls.settings import Settings

from ..problems import Problem

__all__ = ["PAGES", "STATIC_DIR", "page_headers", "router", "tile_origin"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGES = {
    "/": "parking.html",
    "/parking": "parking.html",
    "/buses": "buses.html",
    "/operator/pickups": "pickups.html",
    "/operator/alerts": "alerts.html",
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


def page_headers(settings: Settings) -> dict[str, str]:
    """Security headers of a page: the CSP admits images from the tile server, and nothing else from elsewhere."""
    origin = tile_origin(settings.map_tile_url)
    return {**SECURITY_HEADERS, "Content-Security-Policy": CSP.format(tiles=f" {origin}" if origin else "")}


def _page_route(path: str, filename: str) -> None:
    async def page(request: Request) -> FileResponse:
        return FileResponse(
            STATIC_DIR / filename,
            media_type=MEDIA_TYPES[".html"],
            headers={**page_headers(request.app.state.ctx.settings), "Cache-Control": "no-cache"},
        )

    page.__name__ = "page_" + (path.strip("/").replace("/", "_") or "index")
    router.add_api_route(path, page, methods=["GET", "HEAD"], response_class=FileResponse)


for _path, _file in PAGES.items():
    _page_route(_path, _file)


@router.get("/static/{name}")
async def static_file(name: Annotated[str, PathParam(max_length=64, pattern=r"^[a-z0-9_-]+\.[a-z]+$")]) -> FileResponse:
    """A file of ``api/static`` by its plain name (no directories, known types only)."""
    path = STATIC_DIR / name
    media_type = MEDIA_TYPES.get(path.suffix)
    if media_type is None or not path.is_file():
        raise Problem(404, f"no static file {name!r}")
    return FileResponse(path, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
