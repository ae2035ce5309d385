"""``/docs`` works offline and with a key: the page, its files and the schema are served by the
server itself and open to a browser, the API stays behind the key, and the schema declares the
bearer scheme that Swagger UI's Authorize button sends.

A real server on 127.0.0.1; the browser test opens the page in Debian's headless ``chromium``
with every host but 127.0.0.1 unresolvable, so a page that needed a CDN would stay blank.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from inbedder_integrations import InBedder

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background
from inbedder_integrations.serving.docs_page import ASSETS, DOCS_PATHS

TOPIC = "What is the topic of this text?"
KEY = "docs-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(engine: InBedder) -> Iterator[str]:
    config = ServeConfig((ServedInstruction("topic", TOPIC),), port=0, api_key=KEY, cache=False)
    with serve_in_background(config, engine) as running:
        yield running.url


def test_the_pages_their_files_and_the_schema_need_no_key_and_the_api_does(server: str) -> None:
    for path in DOCS_PATHS:
        response = httpx.get(f"{server}{path}")
        assert response.status_code == 200, (path, response.text[:200])
    for path, (_, media_type) in ASSETS.items():
        response = httpx.get(f"{server}{path}")
        assert response.headers["content-type"] == media_type and len(response.content) > 1000
    for path in ("/docs", "/redoc"):
        page = httpx.get(f"{server}{path}").text
        assert not re.findall(r"https?://", page), f"{path} loads nothing from another host"
    assert httpx.get(f"{server}/v1/models").status_code == 401
    assert httpx.post(f"{server}/embed", json={"inputs": "x"}).status_code == 401
    assert httpx.get(f"{server}/v1/models", headers=AUTH).status_code == 200


def test_the_schema_declares_the_bearer_scheme_on_every_keyed_operation(server: str) -> None:
    spec = httpx.get(f"{server}/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            expected = None if path == "/health" else [{"bearer": []}]
            assert operation.get("security") == expected, (method, path)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_in_a_headless_browser_offline(server: str) -> None:
    browser = _chromium()
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        # Nothing but the server resolves: a script or style from a CDN would not load.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=20000",
        "--dump-dom",
        f"{server}/docs",
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=180, check=True).stdout
    # Swagger UI drew one block per operation of /openapi.json, and its Authorize button
    # (shown only for a document that declares a security scheme).
    spec = httpx.get(f"{server}/openapi.json").json()
    paths = {path for path in spec["paths"]}
    shown = set(re.findall(r'data-path="([^"]+)"', dom))
    assert shown == paths, (sorted(paths - shown), dom[-2000:])
    assert re.search(r'class="btn authorize', dom), "no Authorize button"
    # The browser fetched the page's files and the schema from this server, without a key.
    metrics = httpx.get(f"{server}/metrics", headers=AUTH).text
    for path in ("/openapi.json", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"):
        assert re.search(rf'endpoint="{re.escape(path)}",status="200"}} [1-9]', metrics), path
