"""Fair shares through the REST API of a real broker: a group under its share gets an offer from
capacity another group holds only in unaccepted offers beyond its own share; what was taken back
is shown, and an accept of it refused with a clear 409.

The platform: two kwok nodes of 8 cores, a horizon of two hours (16 cores x 2 h = 115,200
core-seconds); ``astro`` has 75% of it, ``students`` 25% (28,800 core-seconds); no per-owner
limits. The students' owner ``sam`` holds both nodes for the next two hours in offers nobody has
accepted: four times the students' share.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.integration.api.helpers import body, create, docker_request, fmt, get, update
from tests.integration.api.stack import Broker, Shape, broker_stack
from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration

POLICY: dict[str, Any] = {
    "ownerLimits": {},
    "groups": [{"name": "astro", "share": 0.75}, {"name": "students", "share": 0.25}],
}
USERS = {"ann": ["astro"], "sam": ["students"]}


@pytest.fixture(scope="module")
def eb(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log = tmp_path_factory.mktemp("shares") / "operator.log"
    shape = Shape(nodes=2, cores=8, memory_gib=32, offer_ttl=120, horizon_seconds=2 * 3600, sharing=POLICY)
    with broker_stack(kube, log, shape, answer_timeout=30, groups=USERS) as b:
        yield b
        b.cleanup()


def soon(cores: int, duration: str) -> dict[str, Any]:
    """``cores`` for ``duration``, starting within the next ten minutes."""
    now = datetime.now(UTC)
    return docker_request(cores=cores, max_cores=cores, duration=duration, start=[f"{fmt(now)}/PT10M"])


def withdrawn(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        o
        for o in doc["offers"]
        if o["phase"] == "EXPIRED"
        and any(m["type"] == "urn:ivoa:eb:preempted" for m in o.get("messages", []))
    ]


def test_a_group_under_its_share_takes_back_what_another_holds_beyond_its_own(eb: Broker) -> None:
    ann, sam = eb.client("ann"), eb.client("sam")
    sets = []
    for _ in range(4):  # the students fill both nodes for the next two hours
        answer = create(sam, soon(8, "PT1H"))
        if answer["result"] == "NO":
            break
        sets.append(answer)
    assert len(sets) >= 2, "the students hold both nodes"
    assert create(sam, soon(8, "PT1H"))["result"] == "NO", "nothing is left in the window"

    mine = create(ann, soon(2, "PT30M"))
    assert mine["result"] == "YES", mine.get("messages")
    assert len(mine["offers"]) == 1  # the least it asked for: what its share guarantees
    assert mine["offers"][0]["phase"] == "OFFERED"

    now_seen = [get(sam, s["href"]) for s in sets]
    taken = [o for doc in now_seen for o in withdrawn(doc)]
    assert len(taken) == 1, "only the offer in the way is taken back"
    [message] = [m for m in taken[0]["messages"] if m["type"] == "urn:ivoa:eb:preempted"]
    assert "withdrawn for group astro, which is under its share of the platform" in message["message"]
    assert taken[0]["options"] == []

    refused = update(sam, taken[0]["href"], "ACCEPTED")
    assert refused.status_code == 409, refused.text
    [error] = [m for m in body(refused)["messages"] if m["level"] == "ERROR"]
    assert "Cannot change phase from EXPIRED to ACCEPTED" in error["message"]
    assert "withdrawn for group astro" in error["message"]

    # the students' other offers still stand, and one of them can be accepted
    standing = [o for doc in now_seen for o in doc["offers"] if o["phase"] == "OFFERED"]
    assert standing, "the offers not in the way were not touched"
    accepted = update(sam, standing[0]["href"], "ACCEPTED")
    assert accepted.status_code == 200, accepted.text

    # a group over its share never takes anything back: astro's offer stays, the students get NO
    assert create(sam, soon(8, "PT1H"))["result"] == "NO"
    assert get(ann, mine["href"])["offers"][0]["phase"] == "OFFERED"
