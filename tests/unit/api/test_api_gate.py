"""The gate's pure parts: its signed cookies, the URL a redeemed login link goes back to, the
cookie it sets; and what it answers before it needs the cluster (the API server unreachable, no
mocks). The gate's decisions about real sessions are tested on the cluster
(tests/integration/operator/test_operator_routes.py, and through Traefik in
tests/integration/sessions)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from tests.support.offline_api import offline_api

from eb_operator.api import ApiSettings, create_app
from eb_operator.api.gate import (
    COOKIE,
    Forwarded,
    broker_credential,
    cookie_valid,
    cookie_value,
    login_link,
    read_cookie,
    set_cookie,
)

pytestmark = pytest.mark.unit

KEY = b"k" * 32
UUID = "6b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b201"


def test_a_cookie_is_valid_for_its_session_execution_and_owner_until_its_time() -> None:
    value = cookie_value(KEY, UUID, "uid-1", "alice", 2000)
    assert cookie_valid(KEY, value, UUID, "uid-1", "alice", now=1999)
    for uuid, uid, owner, now, key in [
        (UUID, "uid-1", "alice", 2000, KEY),  # expired
        ("6b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b202", "uid-1", "alice", 1000, KEY),  # another session
        (UUID, "uid-2", "alice", 1000, KEY),  # a re-made Execution of that name
        (UUID, "uid-1", "bob", 1000, KEY),  # another owner
        (UUID, "uid-1", "alice", 1000, b"o" * 32),  # another broker's key
    ]:
        assert not cookie_valid(key, value, uuid, uid, owner, now), (uuid, uid, owner, now)
    forged = value.replace("2000.", "9000.")
    assert not cookie_valid(KEY, forged, UUID, "uid-1", "alice", now=1000)
    for junk in ("", "x", "2000", "2000.", ".abc", "abc.def"):
        assert not cookie_valid(KEY, junk, UUID, "uid-1", "alice", now=1000), junk


def test_a_redeemed_link_goes_back_to_its_url_without_the_code() -> None:
    asked = Forwarded(
        "https", "sessions.example.org", "/session/notebook/u/lab/tree/a.ipynb?x=1&eb-login=c0de&y="
    )
    assert asked.login_code() == "c0de"
    assert asked.path == "/session/notebook/u/lab/tree/a.ipynb"
    assert asked.without_login() == "https://sessions.example.org/session/notebook/u/lab/tree/a.ipynb?x=1&y="
    assert Forwarded("http", "h:8088", "/s/").login_code() is None
    assert login_link("http://h/s/lab", "c0de") == "http://h/s/lab?eb-login=c0de"
    assert login_link("http://h/s/?a=1", "c+d") == "http://h/s/?a=1&eb-login=c%2Bd"


def test_only_a_bearer_authorization_is_the_brokers_jupyterlabs_own_token_is_not() -> None:
    assert broker_credential("Bearer t0k") == "Bearer t0k"
    assert broker_credential("bearer t0k") == "bearer t0k"
    assert broker_credential("Bearer") == "Bearer"  # malformed: the authenticator says why (401)
    assert broker_credential("token 5ec7e7") is None  # JupyterLab's API calls
    assert broker_credential("Basic YTpi") is None
    assert broker_credential(None) is None


def test_the_cookie_is_http_only_lax_scoped_to_the_session_and_secure_behind_https() -> None:
    assert set_cookie("v", "/session/notebook/u/", secure=False) == (
        f"{COOKIE}=v; Path=/session/notebook/u/; HttpOnly; SameSite=Lax"
    )
    assert (
        set_cookie("", "/s/", secure=True, max_age=0)
        == f"{COOKIE}=; Path=/s/; HttpOnly; SameSite=Lax; Secure; Max-Age=0"
    )
    assert read_cookie(f"a=1; {COOKIE}=1.abc; b=2") == "1.abc"
    assert read_cookie("a=1") is None
    assert read_cookie(None) is None
    assert read_cookie('bad="') is None


# --- before the cluster ----------------------------------------------------------------------------


async def _client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with offline_api(settings) as (_, c):
        yield c


@pytest.fixture
async def keyed() -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(ApiSettings(namespace="unit", static_tokens="t0k,alice", session_key="k" * 32)):
        yield c


@pytest.fixture
async def unkeyed() -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(ApiSettings(namespace="unit", static_tokens="t0k,alice")):
        yield c


async def test_the_gate_does_not_know_a_malformed_session(keyed: httpx.AsyncClient) -> None:
    r = await keyed.get("/gate/not-a-uuid")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/plain")


async def test_without_a_session_key_the_gate_lets_nobody_in(unkeyed: httpx.AsyncClient) -> None:
    r = await unkeyed.get(f"/gate/{UUID}", headers={"Authorization": "Bearer t0k"})
    assert r.status_code == 503
    assert "session key" in r.text


async def test_a_login_link_needs_the_owners_token(keyed: httpx.AsyncClient) -> None:
    r = await keyed.post(f"/sessions/{UUID}/login", headers={"Accept": "application/json"})
    assert r.status_code == 401


def test_a_short_session_key_stops_the_api_at_start() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        create_app(ApiSettings(namespace="unit", session_key="short"))
