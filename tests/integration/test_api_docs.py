"""The interactive docs work offline: their assets are served by the API itself."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

ASSET = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'"\s)>]+)""")


def assets(page: str) -> list[str]:
    """Every URL a docs page loads (scripts, styles, icons), the OpenAPI document aside."""
    return [url for url in ASSET.findall(page) if not url.endswith("openapi.json")]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets_and_those_are_served(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    urls = assets(response.text)
    scripts = [url for url in urls if url.endswith(".js")]
    assert scripts, f"{page} loads no script: {urls}"
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        assert not url.startswith("//"), f"{page} loads {url} from elsewhere"
        served = client.get(url)
        assert served.status_code == 200, url
        assert served.content, url
    for url in scripts:
        assert "javascript" in client.get(url).headers["content-type"]
