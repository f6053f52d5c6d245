"""Web pages for citizens and operators: static HTML, CSS and JavaScript from ``api/static`` (no build step).

``/`` and ``/parking`` (free spaces, live), ``/buses`` (occupancy per line), ``/operator/pickups`` (the pickup plan;
the page is public, its data needs the operator key, which the page sends as ``X-API-Key``). Pages load nothing
from other origins, and the Content-Security-Policy says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from ..problems import Problem

__all__ = ["PAGES", "STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGES = {
    "/": "parking.html",
    "/parking": "parking.html",
    "/buses": "buses.html",
    "/operator/pickups": "pickups.html",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


def _page_route(path: str, filename: str) -> None:
    async def page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / filename,
            media_type=MEDIA_TYPES[".html"],
            headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
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
