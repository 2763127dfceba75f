"""Hostile input against the real service (``tests.support.hostile``), as an attacker would send it:
every body is answered with a 4xx and a structured IVOA error, or (a well-formed request with
extreme values) with an answer, never a 5xx; and it is all sent on ONE keep-alive connection,
each answer followed by a plain request that must still be answered on that same connection (a
500 used to make the server drop it, so the client's next request failed with no answer)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.integration.api.conftest import NODE_CORES, NODE_GPUS, NODE_MEMORY_GIB, TOKENS, Broker
from tests.integration.api.helpers import check_offerset, create, docker_request, over_capacity
from tests.integration.api.stack import BODY_LIMITS
from tests.support.hostile import JSON, extreme, unreadable

from eb_operator.api import ApiSettings

UNKNOWN = "/offersets/00000000-0000-4000-8000-000000000000"


class OneConnection:
    """An HTTP client held to one connection, that notices when the server dropped it."""

    def __init__(self, eb: Broker) -> None:
        self.client = httpx.Client(
            base_url=eb.url,
            headers={"Authorization": f"Bearer {TOKENS['alice']}"},
            timeout=60,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )
        self.address: Any = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        r = self.client.post(path, content=body, headers=headers)
        self._same_connection(r)
        return r

    def still_answers(self) -> str | None:
        """None when a plain request on the same connection is answered (a structured 404)."""
        try:
            r = self.client.get(UNKNOWN, headers={"Accept": JSON})
        except httpx.HTTPError as e:
            return f"the next request failed: {e!r}"
        if not self._same_connection(r):
            return "the server closed the connection: the next request needed a new one"
        if r.status_code != 404 or r.json()["messages"][0]["type"] != "urn:ivoa:eb:not-found":
            return f"the next request got {r.status_code} {r.text[:200]}"
        return None

    def _same_connection(self, r: httpx.Response) -> bool:
        address = r.extensions["network_stream"].get_extra_info("client_addr")
        if self.address is None:
            self.address = address
        return bool(address == self.address)


@pytest.fixture
def conn(eb: Broker) -> Iterator[OneConnection]:
    c = OneConnection(eb)
    with c.client:
        yield c


def _error(r: httpx.Response) -> dict[str, Any]:
    assert r.headers["content-type"] == "application/json; charset=utf-8", r.headers
    [item] = json.loads(r.content)["messages"]
    assert item["level"] == "ERROR"
    assert item["type"].startswith("urn:ivoa:eb:")
    return dict(item)


@pytest.mark.parametrize("path", ["/offersets", "/direct"])
def test_unreadable_bodies_are_a_structured_4xx_and_the_connection_stays(
    eb: Broker, conn: OneConnection, path: str
) -> None:
    cases = unreadable(ApiSettings(**BODY_LIMITS).body_limits())
    failures = []
    for case in cases:
        r = conn.post(path, case.body, case.headers())
        if r.status_code != case.status:
            failures.append(f"{case.id}: {r.status_code} (not {case.status}) {r.text[:200]}")
        elif case.reason not in (message := _error(r)["message"]):
            failures.append(f"{case.id}: {message!r} does not say {case.reason!r}")
        if (broken := conn.still_answers()) is not None:
            failures.append(f"{case.id}: {broken}")
    assert not failures, "\n".join(failures)
    assert len(cases) >= 45
    assert eb.offersets() == [], "nothing unreadable reached the cluster"
    assert eb.executions() == []


def test_extreme_values_are_answered_or_a_400_never_a_5xx(
    eb: Broker, conn: OneConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    outcomes: dict[str, str] = {}
    failures = []
    for name, doc in extreme():
        r = conn.post("/offersets", json.dumps(doc).encode(), {"Content-Type": JSON, "Accept": JSON})
        if r.status_code == 303:
            answer = r.json()
            check_offerset(answer)
            outcomes[name] = f"303 {answer['result']}"
        elif r.status_code == 400:
            outcomes[name] = f"400 {_error(r)['message'][:90]}"
        else:
            failures.append(f"{name}: {r.status_code} {r.text[:300]}")
        if (broken := conn.still_answers()) is not None:
            failures.append(f"{name}: {broken}")
    with capsys.disabled():
        print("\nextreme values:\n" + "\n".join(f"  {k}: {v}" for k, v in outcomes.items()))
    assert not failures, "\n".join(failures)
    assert len(outcomes) == len(extreme())
    assert any(o.startswith("303 NO") for o in outcomes.values()), outcomes
    assert any(o.startswith("400") for o in outcomes.values()), outcomes
    assert not over_capacity(eb.held(), NODE_CORES, NODE_MEMORY_GIB, NODE_GPUS)
    with eb.client() as c:
        assert create(c, docker_request())["result"] == "YES", "the broker still answers afterwards"
