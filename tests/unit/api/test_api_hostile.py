"""Hostile bodies (``tests.support.hostile``) through the whole app in-process, with the API server
unreachable: each is refused while it is read, with a 4xx and a structured IVOA error, before the
cluster would be asked (which would answer 503 here). The same cases against the real service, on
one keep-alive connection: tests/integration/api/test_api_hostile.py."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from tests.support.hostile import Hostile, unreadable

from eb_operator.api import ApiSettings, create_app
from eb_operator.cluster.rest_store import RestStore

pytestmark = pytest.mark.unit
ON_THE_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # one app for every case

TOKEN = "unit-test-token"
SETTINGS = ApiSettings(
    namespace="unit",
    static_tokens=f"{TOKEN},alice",
    token_review=False,
    answer_timeout_seconds=1,
    max_body_bytes=64 * 1024,
    max_stored_bytes=128 * 1024,
    yaml_max_depth=32,
    yaml_max_nodes=5_000,
    max_string_chars=8_192,
)
CASES = unreadable(SETTINGS.body_limits())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    port = _closed_port()

    async def unreachable(s: ApiSettings) -> RestStore:
        return RestStore.at(f"http://127.0.0.1:{port}", s.namespace, request_timeout=1)

    app = create_app(SETTINGS, store_factory=unreachable)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=transport, base_url="http://broker.test", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as c,
    ):
        yield c


def test_every_limit_has_a_case() -> None:
    reasons = " ".join(c.reason for c in CASES)
    for words in ("number longer", "finite", "deeper", "string longer", "larger than", "nodes", "stored"):
        assert words in reasons, words


@ON_THE_MODULE_LOOP
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("path", ["/offersets", "/requests", "/direct"])
async def test_a_hostile_body_is_a_structured_4xx(
    client: httpx.AsyncClient, case: Hostile, path: str
) -> None:
    r = await client.post(path, content=case.body, headers=case.headers())
    assert r.status_code == case.status, r.text[:300]
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    [item] = json.loads(r.content)["messages"]
    assert item["level"] == "ERROR"
    assert item["type"].startswith("urn:ivoa:eb:")
    assert case.reason in item["message"], item["message"]


@ON_THE_MODULE_LOOP
@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.content_type in ("application/json", "application/yaml")],
    ids=lambda c: c.id,
)
async def test_a_hostile_update_is_a_structured_4xx(client: httpx.AsyncClient, case: Hostile) -> None:
    """Session updates read their bodies the same way."""
    r = await client.post(
        "/sessions/00000000-0000-4000-8000-000000000000", content=case.body, headers=case.headers()
    )
    assert r.status_code == case.status, r.text[:300]
    assert case.reason in json.loads(r.content)["messages"][0]["message"]
