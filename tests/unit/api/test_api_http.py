"""The HTTP layer end to end, with the API server unreachable (a closed local port, no mocks).

Everything the service checks before it touches the cluster (406, 401, 415, 413, 400, 404 on a
malformed uuid) answers here exactly as it will with a cluster; anything that needs the cluster
answers 503 with Retry-After and a structured error document, never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support.offline_api import offline_api

from eb_operator.api import ApiSettings

pytestmark = pytest.mark.unit

TOKEN = "unit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REQUEST = {
    "name": "unit",
    "executable": {
        "type": "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0",
        "image": {"locations": ["busybox:latest"]},
    },
}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = ApiSettings(
        namespace="unit",
        static_tokens=f"{TOKEN},alice",
        token_review=False,
        max_body_bytes=4096,
        answer_timeout_seconds=1,
    )
    async with offline_api(settings) as (_, c):
        yield c


def _messages(r: httpx.Response) -> list[dict[str, str]]:
    doc = json.loads(r.content) if "json" in r.headers["content-type"] else None
    assert doc is not None
    messages: list[dict[str, str]] = doc["messages"]
    assert messages
    assert messages[-1]["level"] == "ERROR"
    return messages


async def test_406_comes_first(client: httpx.AsyncClient) -> None:
    r = await client.post("/offersets", headers={"Accept": "application/xml"}, content=b"x: 1")
    assert r.status_code == 406


async def test_401_without_token(client: httpx.AsyncClient) -> None:
    r = await client.post("/offersets", json=REQUEST, headers={"Accept": "application/json"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    _messages(r)


async def test_401_with_unknown_token(client: httpx.AsyncClient) -> None:
    r = await client.get(
        f"/offersets/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers={"Authorization": "Bearer nope"}
    )
    assert r.status_code == 401


async def test_415_for_xml_and_form_bodies(client: httpx.AsyncClient) -> None:
    for ctype in ("application/xml", "application/x-www-form-urlencoded", "text/plain"):
        r = await client.post(
            "/offersets",
            content=b"<a/>",
            headers={**AUTH, "Content-Type": ctype, "Accept": "application/json"},
        )
        assert r.status_code == 415, ctype
        _messages(r)


async def test_413_over_the_configured_size(client: httpx.AsyncClient) -> None:
    body = json.dumps({**REQUEST, "name": "x" * 5000}).encode()
    r = await client.post("/offersets", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413


async def test_413_also_when_streamed_without_length(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"a: " + b"x" * 1000 + b"\n"

    r = await client.post("/offersets", content=chunks(), headers=AUTH)
    assert r.status_code == 413


async def test_400_for_an_alias_bomb(client: httpx.AsyncClient) -> None:
    body = b'a: &a ["x","x"]\nb: [*a,*a]\n'
    r = await client.post("/offersets", content=body, headers={**AUTH, "Accept": "application/json"})
    assert r.status_code == 400
    assert "alias" in _messages(r)[0]["message"]


async def test_400_for_a_list_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/offersets", content=b"[1]", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400


async def test_malformed_uuid_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/offersets/not-a-uuid", "/sessions/not-a-uuid"):
        r = await client.get(path, headers={**AUTH, "Accept": "application/json"})
        assert r.status_code == 404, path
        _messages(r)


async def test_cluster_down_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    r = await client.post("/offersets", json=REQUEST, headers={**AUTH, "Accept": "application/json"})
    assert r.status_code == 503
    assert int(r.headers["retry-after"]) >= 1
    _messages(r)


async def test_operations_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 503
    r = await client.get("/availability")
    assert r.headers["content-type"].startswith("text/xml")
    assert "<vosi:available>false</vosi:available>" in r.text
    r = await client.get("/capabilities")
    assert "ivo://ivoa.net/std/VOSI#availability" in r.text
    assert "http://broker.test/capabilities" in r.text
    metrics = (await client.get("/metrics")).text
    assert 'eb_api_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics


async def test_openapi_describes_every_endpoint(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert {"/offersets", "/requests", "/offersets/{uuid}", "/sessions/{uuid}", "/direct"} <= set(paths)
    post = paths["/offersets"]["post"]
    assert post["operationId"] == "OfferSetPost"
    assert set(post["requestBody"]["content"]) == {"application/yaml", "application/json"}
    assert "Location" in post["responses"]["303"]["headers"]
    assert "OfferSetResponse" in spec["components"]["schemas"]
    assert (await client.get("/docs")).status_code == 200


async def test_docs_page_loads_its_assets_from_the_broker(client: httpx.AsyncClient) -> None:
    # a site without internet access must still render /docs: no CDN, every asset served here
    page = (await client.get("/docs")).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(assets) == [
        "/docs/assets/favicon.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    assert "http://" not in page
    assert "https://" not in page
    js = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in js.text
    css = await client.get("/docs/assets/swagger-ui.css")
    assert css.status_code == 200
    assert ".swagger-ui" in css.text
    assert (await client.get("/redoc")).status_code == 404  # no ReDoc page (it would need a CDN)


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    r = await client.delete("/offersets", headers={"Accept": "application/json"})
    assert r.status_code == 405
    _messages(r)
