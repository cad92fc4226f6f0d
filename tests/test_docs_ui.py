"""/docs and /redoc work on a server without internet access: every file they load comes from
the API itself (before: Swagger UI's JavaScript and CSS from cdn.jsdelivr.net, a blank page)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.main import create_app

PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
LOADED = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


def loaded(html: str) -> list[str]:
    """The URLs a page makes the browser fetch (scripts, style sheets, icons)."""
    return LOADED.findall(html)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())  # the pages touch no database


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_reference_no_other_host(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://|//[a-z]", response.text.replace("window.location", ""))
    for url in loaded(response.text):
        assert url.startswith("/static/docs/"), url


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        (
            "/docs",
            {
                "/static/docs/swagger-ui-bundle.js": "text/javascript",
                "/static/docs/swagger-ui.css": "text/css",
                "/static/docs/favicon.png": "image/png",
            },
        ),
        (
            "/redoc",
            {
                "/static/docs/redoc.standalone.js": "text/javascript",
                "/static/docs/favicon.png": "image/png",
            },
        ),
    ],
)
def test_every_file_a_page_loads_is_served(
    client: TestClient, page: str, assets: dict[str, str]
) -> None:
    html = client.get(page).text
    assert set(loaded(html)) == set(assets)
    for url, kind in assets.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].split(";")[0] == kind
        assert len(response.content) > 1000  # the real build, not a stub
    if page == "/docs":
        # Swagger UI would otherwise ask validator.swagger.io for a badge about the document
        assert '"validatorUrl": null' in html
        assert "url: '/openapi.json'" in html
        assert client.get("/openapi.json").json()["info"]["title"] == "Tally"


def test_behind_a_path_prefix_the_pages_load_from_under_it() -> None:
    prefixed = TestClient(create_app(), root_path="/tally")
    html = prefixed.get("/docs").text
    assert "/tally/static/docs/swagger-ui-bundle.js" in loaded(html)
    assert "url: '/tally/openapi.json'" in html
    # ASGI: the path a proxy forwards includes the prefix (root_path)
    assert prefixed.get("/tally/static/docs/swagger-ui.css").status_code == 200
