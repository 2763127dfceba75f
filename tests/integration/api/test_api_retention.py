"""A set or session that retention deleted answers 404 through REST (docs/api.md), as one that
never existed: the REST service reads only what the API server has."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from tests.integration.api.conftest import Broker
from tests.integration.api.helpers import create, docker_request, update
from tests.support.kube import wait_for

TTL = 3


@pytest.fixture
def short_lived(eb: Broker) -> Iterator[Broker]:
    """The session broker with retention of a few seconds, put back afterwards."""
    before = eb.kube.get("executionplatforms", eb.platform)
    retention = {"ttlSecondsAfterFinished": TTL, "offerSetTtlSeconds": TTL}
    patch = json.dumps({"spec": {"retention": retention}})
    eb.kube.run("patch", "executionplatform", eb.platform, "--type", "merge", "-p", patch)
    wait_for(lambda: _taken(eb), 60, "the operator to take the retention policy")
    try:
        yield eb
    finally:
        remove = json.dumps([{"op": "remove", "path": "/spec/retention"}])
        eb.kube.run("patch", "executionplatform", eb.platform, "--type", "json", "-p", remove, check=False)
        assert "retention" not in (before.get("spec") or {})


def _taken(eb: Broker) -> bool:
    p = eb.kube.get("executionplatforms", eb.platform)
    return bool((p.get("status") or {}).get("observedGeneration") == p["metadata"]["generation"])


def _status(c: httpx.Client, href: str) -> int:
    return c.get(href).status_code


def test_a_deleted_set_and_session_answer_404(short_lived: Broker) -> None:
    eb = short_lived
    with eb.client() as c:
        taken = create(c, {**docker_request(cores=1), "name": "taken"})
        lapsing = create(c, {**docker_request(cores=1), "name": "lapsing"})
        assert taken["result"] == "YES", taken
        assert lapsing["result"] == "YES", lapsing
        session = taken["offers"][0]["href"]
        assert update(c, session, "ACCEPTED").status_code == 200
        assert update(c, session, "CANCELLED").status_code == 200
        assert _status(c, session) == 200
        # the cancelled session goes TTL after it ended, then its set once its offers expired
        wait_for(lambda: _status(c, session) == 404, 90, "the cancelled session to answer 404")
        for answer in (lapsing, taken):
            wait_for(
                lambda a=answer: _status(c, a["href"]) == 404, 120, f"set {answer['href']} to answer 404"
            )
        gone = c.get(session)
        assert gone.status_code == 404
        assert "No session" in gone.text
        never = c.get(lapsing["href"].rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000")
        assert never.status_code == 404, "a set that never existed answers the same"
