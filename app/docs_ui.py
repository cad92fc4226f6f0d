"""/docs (Swagger UI) and /redoc served from files shipped with the package, not a CDN.

FastAPI's own pages load their JavaScript and CSS from cdn.jsdelivr.net and their favicon from
fastapi.tiangolo.com: on a server without internet access /docs stays blank. The assets come
from the `fastapi-offline` package (MIT; Swagger UI 5 and ReDoc 2 builds, kept current with
their releases), served by StaticFiles under ASSETS; only its files are used, not its FastAPI
subclass, so create_app stays as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute

ASSETS = "/static/docs"
FILES = Path(fastapi_offline.__file__).resolve().parent / "static"
# Swagger UI asks validator.swagger.io for a badge about the document unless told not to
OFFLINE_PARAMETERS: dict[str, Any] = {"validatorUrl": None}


def _path(route: BaseRoute) -> str | None:
    return getattr(route, "path", None)


def install(app: FastAPI) -> None:
    """Replace FastAPI's CDN pages at app.docs_url and app.redoc_url by local ones."""
    docs_url, redoc_url, openapi_url = app.docs_url, app.redoc_url, app.openapi_url
    assert openapi_url is not None, "the pages need the OpenAPI document"
    ours = {docs_url, redoc_url} - {None}
    app.router.routes[:] = [r for r in app.router.routes if _path(r) not in ours]
    app.mount(ASSETS, StaticFiles(directory=FILES), name="docs-assets")
    parameters = {**OFFLINE_PARAMETERS, **(app.swagger_ui_parameters or {})}

    if docs_url is not None:

        @app.get(docs_url, include_in_schema=False)
        def swagger_ui(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
                oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=parameters,
            )

    if redoc_url is not None:

        @app.get(redoc_url, include_in_schema=False)
        def redoc(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
