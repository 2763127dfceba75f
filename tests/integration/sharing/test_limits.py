"""Limits per owner and per group, request rates and allowed images, through the REST API of a real
broker (its operator deciding, on the real cluster).

The platform: two kwok nodes of 8 cores; offers live 4 s; the policy's default per-owner limits
(no ``ownerLimits``: 5 requests a second, a burst of 20, 20 offer sets, 10% of the platform's
core-seconds held in offers, ...); the group ``astro`` may hold one session together; images
``eb-workload`` for everyone, and callers in the group ``system:serviceaccounts`` (service-account
tokens, through TokenReview) only under ``registry.example.org/robots/``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.integration.api.helpers import JSON_H, body, create, docker_request, post, update
from tests.integration.api.stack import Broker, Shape, broker_stack
from tests.support.kube import Kubectl

pytestmark = pytest.mark.integration

POLICY: dict[str, Any] = {
    "allowedImages": ["eb-workload"],
    "groups": [
        {"name": "astro", "limits": {"sessions": 1}, "ownerLimits": {"offerSets": 50}},
        {"name": "system:serviceaccounts", "allowedImages": ["registry.example.org/robots/"]},
    ],
}
USERS: dict[str, list[str]] = {"ann": ["astro"], "bea": ["astro", "students"], "carol": []}


@pytest.fixture(scope="module")
def eb(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log = tmp_path_factory.mktemp("sharing") / "operator.log"
    shape = Shape(nodes=2, cores=8, memory_gib=32, offer_ttl=4, sharing=POLICY)
    with broker_stack(kube, log, shape, answer_timeout=30, groups=USERS) as b:
        yield b


@pytest.fixture
def clean(eb: Broker) -> Iterator[Broker]:
    yield eb
    eb.cleanup()


def small() -> dict[str, Any]:
    """One core for ten minutes: what both the greedy and the polite client ask for."""
    return docker_request(cores=1, memory=1, duration="PT10M", name="small")


def test_a_greedy_client_gets_429_or_no_while_a_polite_one_gets_yes_throughout(clean: Broker) -> None:
    """Without limits, four greedy threads fill both nodes for the whole start window in about a
    second (each set holds up to four offers); with the default limits the greedy owner is refused
    (rate: 429; what it holds: NO), and the polite owner's one request a second is answered YES."""
    stop = threading.Event()
    greedy: Counter[str] = Counter()
    refusals: list[httpx.Response] = []
    lock = threading.Lock()

    def hammer() -> None:
        with clean.client("alice") as c:
            while not stop.is_set():
                r = post(c, "/offersets", small())
                kind = str(r.status_code)
                if r.status_code == 303:
                    kind = f"303 {body(r)['result']}"
                with lock:
                    greedy[kind] += 1
                    if r.status_code == 429 and len(refusals) < 3:
                        refusals.append(r)

    threads = [threading.Thread(target=hammer, name=f"greedy-{i}") for i in range(4)]
    for t in threads:
        t.start()
    polite: list[str] = []
    try:
        with clean.client("bob") as c:
            began = time.monotonic()
            for i in range(30):
                wait_until = began + i
                while time.monotonic() < wait_until:  # a client's pacing, not a synchronisation
                    time.sleep(0.05)
                answer = create(c, small())
                polite.append(answer["result"])
                if answer["result"] != "YES":
                    pytest.fail(f"the polite owner got {answer['result']} at {i} s: {answer.get('messages')}")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    print(f"greedy owner (4 threads, 30 s): {dict(greedy)}; polite owner (1/s): {dict(Counter(polite))}")
    assert polite == ["YES"] * 30
    assert greedy["429"] > 0, greedy
    assert greedy["303 NO"] > 0, greedy
    assert not [k for k in greedy if k.startswith("5")], greedy
    assert sum(greedy.values()) > 100, f"the greedy client did post in a loop: {greedy}"
    r = refusals[0]
    assert int(r.headers["retry-after"]) >= 1
    doc = body(r)
    [message] = doc["messages"]
    assert message["type"] == "urn:ivoa:eb:rate-limited"
    assert "more often than 5 times a second" in message["message"]


def test_an_owner_over_a_limit_is_told_which(clean: Broker) -> None:
    """Sets of four one-core offers, one after the other: the offered core-seconds an owner may
    hold (10% of 16 cores x 6 h) run out after a handful, well inside the burst of 20."""
    with clean.client("carol") as c:
        answers = []
        for _ in range(20):
            answers.append(create(c, small()))
            if answers[-1]["result"] == "NO":
                break
    last = answers[-1]
    assert last["result"] == "NO", [a["result"] for a in answers]
    [message] = [m for m in last["messages"] if m["level"] == "ERROR"]
    assert message["type"] == "urn:ivoa:eb:over-limit"
    assert message["message"].startswith("you hold")
    assert "the limit (offeredCoreSeconds) is 34,560" in message["message"]
    assert len(answers) > 2, "the first few sets fit"


def test_a_groups_members_share_its_session_limit(clean: Broker) -> None:
    ann, bea = clean.client("ann"), clean.client("bea")
    first = create(ann, docker_request(duration="PT10M"))
    second = create(bea, docker_request(duration="PT10M"))
    assert first["result"] == second["result"] == "YES"
    accepted = update(ann, first["offers"][0]["href"], "ACCEPTED")
    assert accepted.status_code == 200, accepted.text
    refused = update(bea, second["offers"][0]["href"], "ACCEPTED")
    assert refused.status_code == 409, refused.text
    [error] = [m for m in body(refused)["messages"] if m["level"] == "ERROR"]
    assert "group astro together have 1 accepted sessions, the limit (sessions) is 1" in error["message"]
    # and a new request of a member gets NO saying so, while a caller in no group gets YES
    again = create(bea, docker_request(duration="PT10M"))
    assert again["result"] == "NO"
    assert any("(sessions) is 1" in m["message"] for m in again["messages"])
    assert create(clean.client("bob"), docker_request(duration="PT10M"))["result"] == "YES"


def test_the_callers_groups_are_recorded_on_what_it_asks(clean: Broker) -> None:
    answer = create(clean.client("bea"), small())
    offerset = clean.kube.get("offersets", answer["uuid"], clean.namespace)
    assert offerset["spec"]["owner"] == "bea"
    assert offerset["spec"]["groups"] == ["astro", "students"]


def test_an_image_outside_the_allowed_prefixes_gets_no_naming_it(clean: Broker) -> None:
    doc = small()
    doc["executable"]["image"]["locations"] = ["docker.io/evil/miner:1"]
    answer = create(clean.client("alice"), doc)
    assert answer["result"] == "NO"
    [message] = [m for m in answer["messages"] if m["level"] == "ERROR"]
    assert message["type"] == "urn:ivoa:eb:image-not-allowed"
    assert "docker.io/evil/miner:1" in message["message"]
    assert "eb-workload" in message["message"]
    assert "executable/image/locations/0" in message["message"]
    assert create(clean.client("alice"), small())["result"] == "YES"  # eb-workload is allowed


def test_a_notebook_follows_the_same_image_policy(clean: Broker) -> None:
    doc = small()
    doc["executable"] = {
        "type": "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0",
        "name": "nb",
        "location": "https://example.org/analysis.ipynb",
    }
    answer = create(clean.client("alice"), doc)
    assert answer["result"] == "NO"
    assert any(
        m["type"] == "urn:ivoa:eb:image-not-allowed" and "notebook server image eb-notebook" in m["message"]
        for m in answer["messages"]
    ), answer["messages"]


def test_service_account_groups_come_from_tokenreview(clean: Broker, kube: Kubectl) -> None:
    kube.run("create", "serviceaccount", "robot", "-n", clean.namespace)
    token = kube.run("create", "token", "robot", "-n", clean.namespace, "--duration=10m").stdout.strip()
    with httpx.Client(base_url=clean.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        r = post(c, "/offersets", small(), JSON_H)
    assert r.status_code == 303, r.text
    answer = body(r)
    offerset = kube.get("offersets", answer["uuid"], clean.namespace)
    assert offerset["spec"]["owner"] == f"system:serviceaccount:{clean.namespace}:robot"
    assert "system:serviceaccounts" in offerset["spec"]["groups"]
    assert answer["result"] == "NO"  # its group may run only registry.example.org/robots/ images
    assert any("group system:serviceaccounts" in m["message"] for m in answer["messages"])
