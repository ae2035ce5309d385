"""``/docs`` (Swagger UI) and ``/redoc``, whose scripts, style and icon the server serves itself.

FastAPI's own pages load them from a CDN, so they are blank on a machine without internet
access; here they come from the ``fastapi-offline`` package (part of the ``serve`` extra),
read from its folder without importing it.  The pages, their files and ``/openapi.json``
are open on a server with a key (see :data:`~.guard.OPEN_ROUTES`): a browser cannot send a
bearer header to load a page, and Swagger UI's Authorize button sends the key on the API's
requests, which the document declares (``components.securitySchemes``).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..errors import missing_extra

__all__ = ["ASSETS", "DOCS_PATHS", "add_docs_routes"]

#: The pages' files: path -> (file in the package's folder, media type).
ASSETS: dict[str, tuple[str, str]] = {
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "/docs/swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "/docs/favicon.png": ("favicon.png", "image/png"),
    "/redoc/redoc.standalone.js": ("redoc.standalone.js", "text/javascript; charset=utf-8"),
}
_OPENAPI, _DOCS, _REDIRECT, _REDOC = "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"
#: Every path of the documentation: open to anyone, on a server with a key too.
DOCS_PATHS = (_OPENAPI, _DOCS, _REDIRECT, _REDOC, *ASSETS)
_PACKAGE = "fastapi_offline"


def add_docs_routes(app: FastAPI) -> None:
    """The pages and their files (``app`` made with ``docs_url=None, redoc_url=None``);
    raises :class:`~inbedder_integrations.errors.MissingExtraError` without the package."""
    _folder()
    app.add_route(_DOCS, _swagger_page, include_in_schema=False)
    app.add_route(_REDIRECT, _oauth2_redirect, include_in_schema=False)
    app.add_route(_REDOC, _redoc_page, include_in_schema=False)
    for path in ASSETS:
        app.add_route(path, _asset, include_in_schema=False)


async def _swagger_page(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=root + _OPENAPI,
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=root + _REDIRECT,
        swagger_js_url=root + "/docs/swagger-ui-bundle.js",
        swagger_css_url=root + "/docs/swagger-ui.css",
        swagger_favicon_url=root + "/docs/favicon.png",
    )


async def _oauth2_redirect(request: Request) -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


async def _redoc_page(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=root + _OPENAPI,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=root + "/redoc/redoc.standalone.js",
        redoc_favicon_url=root + "/docs/favicon.png",
        with_google_fonts=False,
    )


async def _asset(request: Request) -> Response:
    path = next(path for path in ASSETS if request.scope["path"].endswith(path))
    name, media_type = ASSETS[path]
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(_read(name), media_type=media_type, headers=headers)


@cache
def _read(name: str) -> bytes:
    return (_folder() / name).read_bytes()


@cache
def _folder() -> Path:
    """The package's folder of files (found, not imported: it would import StaticFiles)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise missing_extra("serve", "fastapi-offline")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    missing = [name for name, _ in ASSETS.values() if not (folder / name).is_file()]
    if missing:
        raise missing_extra("serve", f"fastapi-offline (its {folder} lacks {missing})")
    return folder
