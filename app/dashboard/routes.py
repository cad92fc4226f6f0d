"""Serves the dashboard's files: the page at `/`, its assets under `/assets/<version>/`.

The page is read again by the browser on every visit (no-cache); the assets it names carry the
version (a hash of every asset) in their path, so they are cached for a year and a new release
is fetched at once. This module knows nothing of the API: the page reads it over HTTP.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# only this origin's files and API; no inline script or style, no frames, no plugins
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PLACEHOLDER = "{{assets}}"


@lru_cache(maxsize=1)
def assets() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(STATIC.iterdir()) if p.suffix in TYPES}


@lru_cache(maxsize=1)
def version() -> str:
    digest = hashlib.sha256()
    for name, content in assets().items():
        digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()[:12]


def assets_path() -> str:
    return f"/assets/{version()}"


@lru_cache(maxsize=1)
def page() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8").replace(PLACEHOLDER, assets_path())


def index() -> HTMLResponse:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return HTMLResponse(page(), headers=headers)


def asset(asset_version: str, name: str) -> Response:
    content = assets().get(name)
    if content is None or asset_version != version():
        raise HTTPException(status_code=404, detail="no such asset in this version")
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
    return Response(content, media_type=TYPES[Path(name).suffix], headers=headers)


def install(app: FastAPI) -> None:
    """The page and its assets, outside the OpenAPI (they are not the API)."""
    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/assets/{asset_version}/{name}", asset, methods=["GET"], include_in_schema=False
    )
