"""The OpenAPI document and the /docs page, served by the service itself (offline)."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient

from services.api_docs import openapi
from services.api_docs.routes import ASSETS, SERVED

REPOSITORY = Path(__file__).resolve().parents[2]


class References(HTMLParser):
    """Every URL the page loads or points its renderer at."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags[tag] = attributes
        for name in ("src", "href", "spec-url"):
            value = attributes.get(name)
            if value is not None:
                self.urls.append(value)


async def test_the_openapi_document_is_served_as_generated_without_a_key(
    service: TestClient,
) -> None:
    response = await service.get("/api/v3/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.read() == openapi.rendered()
    assert (await response.json())["openapi"] == "3.1.0"


async def test_docs_is_a_page_whose_every_url_is_local_and_answers(
    service: TestClient,
) -> None:
    """GET /docs without a key: HTML that loads only same-origin URLs (no CDN, no
    web fonts), each of which answers 200 without a key."""
    response = await service.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = References()
    page.feed(await response.text())
    assert sorted(page.urls) == ["/api/v3/openapi.json", "/docs/rapidoc-min.js"]
    served = {
        "/api/v3/openapi.json": openapi.rendered(),
        "/docs/rapidoc-min.js": (ASSETS / "rapidoc-min.js").read_bytes(),
    }
    assert page.tags["rapi-doc"]["load-fonts"] == "false"
    for url in page.urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert url.startswith("/"), url
        answer = await service.get(url)
        assert answer.status == 200, url
        assert await answer.read() == served[url], url
    script = await service.get("/docs/rapidoc-min.js")
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert await script.read() == (ASSETS / "rapidoc-min.js").read_bytes()


async def test_only_the_listed_assets_are_served(service: TestClient) -> None:
    """docs.html itself, an unknown name and a path out of the folder answer 404."""
    for path in ("/docs/docs.html", "/docs/nothing.js", "/docs/..%2Froutes.py"):
        response = await service.get(path)
        assert response.status == 404, path
        assert await response.json() == {"message": "Not Found"}


async def test_the_documents_security_is_what_the_service_enforces(
    service: TestClient,
) -> None:
    """Every documented operation, called without a key: those the document marks
    public (`security: []`) answer something other than 401, every other one 401."""
    document = json.loads(openapi.rendered())
    checked = 0
    for template, item in document["paths"].items():
        path = re.sub(r"\{bid\}", "no-such-bid", template)
        path = re.sub(r"\{asset\}", "rapidoc-min.js", path)
        path = re.sub(r"\{[a-z_]+\}", "1", path)
        for method, operation in item.items():
            response = await service.request(method.upper(), path)
            public = operation.get("security") == []
            assert (response.status == 401) is not public, (method, path)
            checked += 1
    assert checked == 45


def test_the_wheel_carries_every_asset_and_the_documents() -> None:
    """pyproject's package-data names each file /docs serves (and the documents), so
    an installed service has them, not only a checkout."""
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())
    data = project["tool"]["setuptools"]["package-data"]
    for name in [*SERVED, "docs.html"]:
        relative = f"assets/{name}"
        assert any(fnmatch(relative, pattern) for pattern in data["services.api_docs"])
        assert (ASSETS / name).is_file()
    assert {"asyncapi.json", "openapi.json"} <= set(data["shared"])
