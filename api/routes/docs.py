"""The API console, served from the hub itself: ``/docs`` (Swagger UI).

FastAPI's own console page loads its script, style and icon from a CDN: without internet it stays blank, and
every visitor's address goes to a third party. Here the same page (``fastapi.openapi.docs``) points at the files
of the ``fastapi-offline`` distribution (the Swagger UI 5 build from npm, packaged on PyPI), which this router
serves under ``/docs/assets/``. Nothing is loaded from another origin, and the Content-Security-Policy says so
(the page's start-up script is inline, hence ``'unsafe-inline'``). ReDoc (``/redoc``) is off: its build fetches
its vendor's logo from the vendor's CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

from ..problems import Problem

__all__ = ["ASSETS", "ASSETS_DIR", "router"]

ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = {  # served name -> media type
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
ASSETS_PATH = "/docs/assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# Swagger UI asks validator.swagger.io about the document unless told not to.
SWAGGER_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    page = get_swagger_ui_html(
        openapi_url=root + app.openapi_url,
        title=app.title + " - Swagger UI",
        oauth2_redirect_url=root + OAUTH2_REDIRECT,
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        swagger_ui_parameters={**SWAGGER_PARAMETERS, **(app.swagger_ui_parameters or {})},
    )
    page.headers.update(SECURITY_HEADERS)
    return page


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    page = get_swagger_ui_oauth2_redirect_html()
    page.headers.update(SECURITY_HEADERS)
    return page


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: Annotated[str, PathParam(max_length=64)]) -> FileResponse:
    """A file of the packaged console build, by its name (only the files the pages use)."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise Problem(404, f"no console asset {name!r}")
    return FileResponse(
        ASSETS_DIR / name, media_type=media_type, headers={**SECURITY_HEADERS, "Cache-Control": "max-age=86400"}
    )
