"""One request, many sites: broker a answers with its own offers and its peers' (b: ivoa-std, on
the real node; c: the Calycopis 2026 dialect), ranked; accepting one of b's runs a real Pod at b
and a's session follows it to COMPLETED; a peer's refusal is the client's 409; a peer that dies
during a request costs its offers and a WARN, one that dies during a session fails it after the
bound; loops are refused; no token of a's ever leaves a. Everything through REST and kubectl."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import httpx
from tests.integration.federation.stack import ALICE, Site, broker_token, peer, unpeer
from tests.integration.operator.helpers import ivoa_request
from tests.support.hostile_peer import hostile_peer
from tests.support.kube import REAL_NODE, wait_for

from eb_operator.model.times import parse_instant

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
ACCEPT = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}}
REJECT = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "REJECTED"}}
FINAL = ("REJECTED", "EXPIRED", "COMPLETED", "FAILED", "CANCELLED")


def ask(site: Site, req: Mapping[str, Any], **headers: str) -> dict[str, Any]:
    with site.client() as c:
        r = c.post("/offersets", content=json.dumps(req), headers={**JSON, **headers})
    assert r.status_code == 303, r.text
    doc: dict[str, Any] = r.json()
    return doc


def where(site: Site, answer: Mapping[str, Any]) -> dict[str, str]:
    """Each offer of an answer: "local", or the name of the BrokerPeer holding it (from the set's
    status, as kubectl shows it)."""
    status = site.get("offerset", answer["uuid"])["status"]
    return {o["uuid"]: (o.get("peer") or {}).get("name", "local") for o in status["offers"]}


def held_at(site: Site, answer: Mapping[str, Any], uuid: str) -> dict[str, Any]:
    status = site.get("offerset", answer["uuid"])["status"]
    ref: dict[str, Any] = next(o["peer"] for o in status["offers"] if o["uuid"] == uuid)
    return ref


def first(answer: Mapping[str, Any], places: Mapping[str, str], place: str) -> dict[str, Any]:
    found: dict[str, Any] = next(o for o in answer["offers"] if places[o["uuid"]] == place)
    return found


def phase_of(site: Site, name: str) -> str | None:
    obj = site.kube.run("get", "execution", name, "-n", site.namespace, "-o", "json", check=False)
    if obj.returncode != 0:
        return None
    status = json.loads(obj.stdout).get("status") or {}
    return status.get("phase")


def start(offer: Mapping[str, Any]) -> int:
    return parse_instant(str(offer["schedule"]["executing"]["start"]).split("/")[0])


def test_one_request_gets_offers_from_every_site_ranked_by_start(fed: dict[str, Site]) -> None:
    a, b, c = fed["a"], fed["b"], fed["c"]
    answer = ask(a, ivoa_request(cores=1, duration="PT1M"))
    assert answer["result"] == "YES", answer
    places = where(a, answer)
    assert set(places.values()) == {"local", "b", "c"}, answer.get("messages")
    starts = [start(o) for o in answer["offers"]]
    assert starts == sorted(starts)
    for offer in answer["offers"]:  # every offer is a session of a's, whichever site holds it
        assert offer["href"] == f"{a.url}/sessions/{offer['uuid']}"
        assert offer["phase"] == "OFFERED"
    theirs = first(answer, places, "c")
    assert theirs["resources"]["compute"][0]["cores"]["offered"]["min"] >= 1
    with a.client() as client:
        shown = client.get(theirs["href"]).json()
    assert shown["phase"] == "OFFERED"
    assert shown["schedule"]["executing"] == theirs["schedule"]["executing"]
    # each peer was asked in its own dialect, and told the request came through a
    for site, dialect in ((b, "ivoa-std"), (c, "c26")):
        (asked,) = site.items("offersets")
        notes = asked["metadata"]["annotations"]
        assert notes["executionbroker.ivoa.net/dialect"] == dialect
        assert notes["executionbroker.ivoa.net/via"] == a.broker_id
        assert asked["spec"]["owner"] == f"broker-{a.name}"  # a's identity at the peer, not alice's
    peers = {p["metadata"]["name"]: p["status"] for p in a.items("brokerpeers")}
    assert {n: s["reachable"] for n, s in peers.items()} == {"b": True, "c": True}
    assert all(s["latencyMs"] >= 0 and "lastError" not in s for s in peers.values())


def test_a_calycopis_client_of_a_sees_every_sites_offers_in_its_dialect(fed: dict[str, Site]) -> None:
    a = fed["a"]
    kinds = "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds"
    req = {
        "executable": {
            "kind": f"{kinds}/executable/docker-container.yaml",
            "image": {"locations": ["eb-workload:latest"]},
        },
        "compute": {
            "kind": f"{kinds}/compute/simple-compute-resource.yaml",
            "cores": {"min": 1},
            "memory": {"min": 1},
        },
        "schedule": {"requested": {"duration": "PT1M"}},
    }
    with a.client() as client:
        r = client.post("/requests", content=json.dumps(req), headers=JSON)
    assert r.status_code == 303, r.text
    answer = r.json()
    assert answer["result"] == "YES"
    uuids = [o["meta"]["uuid"] for o in answer["offers"]]
    places = where(a, {"uuid": answer["meta"]["uuid"]})
    assert {places[u] for u in uuids} == {"local", "b", "c"}
    assert all(o["phase"] == "OFFERED" and "cores" in o["compute"] for o in answer["offers"])


def test_accepting_an_offer_of_b_runs_a_real_pod_at_b_and_a_follows_it_to_completed(
    fed: dict[str, Site],
) -> None:
    a, b, c = fed["a"], fed["b"], fed["c"]
    answer = ask(a, ivoa_request(command=("sh", "-c", "echo hello from b"), cores=1, duration="PT1M"))
    assert answer["result"] == "YES", answer
    places = where(a, answer)
    chosen = first(answer, places, "b")
    at_b = held_at(a, answer, chosen["uuid"])
    at_c = [held_at(a, answer, u)["session"] for u, p in places.items() if p == "c"]
    assert at_c, places
    with a.client() as client:
        r = client.post(chosen["href"], content=json.dumps(ACCEPT), headers=JSON)
    assert r.status_code == 200, r.text
    assert r.json()["phase"] in ("ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING", "RELEASING")

    # its siblings: a's own and c's, released; c's told so at c
    with a.client() as client:
        again = client.get(answer["href"]).json()
    assert {o["phase"] for o in again["offers"] if o["uuid"] != chosen["uuid"]} == {"REJECTED"}
    with c.client(broker_token(a.name)) as at:
        for session in at_c:
            wait_for(
                lambda s=session: at.get(f"/sessions/{s}").json()["phase"] == "REJECTED",
                30,
                f"c's offer {session} to be rejected at c",
            )

    # b runs it on the real node, a follows b
    remote = at_b["session"]
    b.kube.run("wait", f"execution/{remote}", "-n", b.namespace, "--for=jsonpath={.status.phase}=COMPLETED",
               "--timeout=180s", timeout=200)  # fmt: skip
    # a REST session's Pod runs in its owner's namespace at b (a's forwarding identity there)
    pod_ns = b.kube.get("execution", remote, b.namespace)["status"]["childNamespace"]
    pod = b.kube.get("pod", f"eb-{remote}", pod_ns)
    assert pod["spec"]["nodeName"] == REAL_NODE
    assert "hello from b" in b.kube.run("logs", f"eb-{remote}", "-n", pod_ns, "-c", "main").stdout
    a.kube.run("wait", f"execution/{chosen['uuid']}", "-n", a.namespace,
               "--for=jsonpath={.status.phase}=COMPLETED", "--timeout=120s", timeout=140)  # fmt: skip
    mirrored = a.get("execution", chosen["uuid"])
    assert mirrored["spec"]["peer"]["name"] == "b"
    assert mirrored["status"]["remote"]["phase"] == "COMPLETED"
    shown = a.kube.run("get", "executions", "-n", a.namespace, "-o", "wide").stdout
    assert chosen["uuid"] in shown
    assert "COMPLETED" in shown
    with a.client() as client:
        assert client.get(chosen["href"]).json()["phase"] == "COMPLETED"


def test_a_peer_that_refuses_the_accept_gives_409_with_its_reason(fed: dict[str, Site]) -> None:
    a, c = fed["a"], fed["c"]
    answer = ask(a, ivoa_request(cores=1, duration="PT1M"))
    places = where(a, answer)
    chosen = first(answer, places, "c")
    remote = held_at(a, answer, chosen["uuid"])["session"]
    with c.client(broker_token(a.name)) as at:  # meanwhile, c's offer is declined at c itself
        assert at.post(f"/sessions/{remote}", json={"kind": "uri:enum-value-update", "path": "phase",
                       "value": "REJECTED"}).status_code == 200  # fmt: skip
    with a.client() as client:
        r = client.post(chosen["href"], content=json.dumps(ACCEPT), headers=JSON)
        assert r.status_code == 409, r.text
        text = r.json()["messages"][-1]["message"]
        assert "peer c refused the accept" in text
        assert "REJECTED" in text  # c's own reason
        assert client.get(chosen["href"]).json()["phase"] == "OFFERED"
        other = next(o for o in answer["offers"] if places[o["uuid"]] == "local")
        assert client.post(other["href"], content=json.dumps(ACCEPT), headers=JSON).status_code == 200


def test_forwarding_loops_are_refused(fed: dict[str, Site]) -> None:
    a, b = fed["a"], fed["b"]
    with a.client() as client:  # a request that says it came through a already
        r = client.post(
            "/offersets", content=json.dumps(ivoa_request()), headers={**JSON, "EB-Via": a.broker_id}
        )
        assert r.status_code == 508, r.text
        assert "forwarding loop" in r.json()["messages"][-1]["message"]
        r = client.post(
            "/offersets", content=json.dumps(ivoa_request()), headers={**JSON, "EB-Via": "w, x, y, z"}
        )
        assert r.status_code == 508
        assert "hop limit" in r.json()["messages"][-1]["message"]
        r = client.post("/offersets", content=json.dumps(ivoa_request()), headers={**JSON, "EB-Via": "x y"})
        assert r.status_code == 400
    assert not a.items("offersets")  # refused before anything was written

    peer(b, a)  # a loop: a -> b -> a
    try:
        answer = ask(a, ivoa_request(cores=1, duration="PT1M"))
        assert answer["result"] == "YES"
        assert "b" in where(a, answer).values()  # b answered a, and did not hang on the loop
        (at_b,) = b.items("offersets")
        texts = [m["message"] for m in at_b["status"]["messages"]]
        assert any("peer a" in t and "forwarding loop" in t for t in texts), texts
        assert len(a.items("offersets")) == 1  # a refused b's forward: it made no second set
    finally:
        unpeer(b, "a")


def test_a_peer_that_refuses_this_brokers_token_is_not_asked_and_the_answer_says_so(
    fed: dict[str, Site],
) -> None:
    a, c = fed["a"], fed["c"]
    peer(a, c, name="c-wrong-token", dialect="c26", token="not-a-token-c-knows", wait=False)
    try:
        wait_for(
            lambda: "401" in str((a.get("brokerpeer", "c-wrong-token").get("status") or {}).get("lastError")),
            60,
            "the probe to find the token refused",
        )
        answer = ask(a, ivoa_request(cores=1, duration="PT1M"))
        assert answer["result"] == "YES"
        assert "c-wrong-token" not in where(a, answer).values()
        warned = [m for m in answer["messages"] if "peer c-wrong-token" in m["message"]]
        assert warned, answer["messages"]
        assert warned[0]["level"] == "WARN"
        assert "401" in warned[0]["message"]
    finally:
        unpeer(a, "c-wrong-token")


HOSTILE = [
    ("broken-json", "not valid JSON"),
    ("huge", "larger than"),
    ("deep", "not valid JSON"),
    ("yaml", "not application/json"),
    ("not-an-object", "not an object"),
    ("elsewhere", "href is not at the peer's own url"),
    ("slow", "no answer within 2 s"),
    ("error", "HTTP 500): disk on fire [31mreally"),
    ("redirect-away", "redirected elsewhere"),
    ("one-good-one-bad", "phase is RUNNING, not OFFERED"),
]


def test_whatever_a_hostile_peer_answers_the_merged_set_stands(fed: dict[str, Site]) -> None:
    a = fed["a"]
    with hostile_peer() as evil:
        a.kube.apply(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hostile", "namespace": a.namespace},
             "stringData": {"token": broker_token(a.name)}},
            {"apiVersion": "executionbroker.ivoa.net/v1alpha1", "kind": "BrokerPeer",
             "metadata": {"name": "hostile", "namespace": a.namespace},
             "spec": {"url": evil.url, "credentials": {"secretName": "hostile"}, "deadlineSeconds": 2}},
        )  # fmt: skip
        try:
            wait_for(lambda: a.get("brokerpeer", "hostile").get("status", {}).get("reachable"), 60, "probed")
            for mode, said in HOSTILE:
                evil.mode = mode
                answer = ask(a, ivoa_request(cores=1, duration="PT1M"))
                assert answer["result"] == "YES", (mode, answer)
                places = set(where(a, answer).values())
                assert {"local", "b", "c"} <= places, (mode, answer.get("messages"))
                assert ("hostile" in places) is (mode == "one-good-one-bad"), mode
                texts = [m["message"] for m in answer["messages"] if "peer hostile" in m["message"]]
                assert any(said in t for t in texts), (mode, texts)
            asked = [h for h in evil.seen if h.get("Content-Type") == "application/json"]
            assert asked, evil.seen
            assert all(h["Authorization"] == f"Bearer {broker_token(a.name)}" for h in asked)
            assert all(h["EB-Via"] == a.broker_id for h in asked)
        finally:
            unpeer(a, "hostile")
    wait_for(lambda: not _names_peer(a, "hostile"), 60, "a to stop asking the deleted peer", interval=1)


def _names_peer(site: Site, name: str) -> bool:
    """Whether an answer of ``site`` now holds an offer of peer ``name`` or a message naming it (its
    directory lists the BrokerPeers every few seconds, so a deleted one is asked a little longer)."""
    answer = ask(site, ivoa_request(cores=1, duration="PT1M"))
    return name in where(site, answer).values() or any(
        f"peer {name}" in m["message"] for m in answer["messages"]
    )


def test_a_peer_killed_mid_request_costs_its_offers_and_a_warning_not_the_set(fed: dict[str, Site]) -> None:
    a, b = fed["a"], fed["b"]
    b.pause_operator()  # b's API takes the request and waits for b's operator, which says nothing
    got: list[httpx.Response] = []
    try:
        asking = threading.Thread(
            target=lambda: got.append(
                a.client().post("/offersets", content=json.dumps(ivoa_request(cores=1)), headers=JSON)
            )
        )
        asking.start()
        wait_for(lambda: b.items("offersets"), 30, "a's request to reach b")
        b.kill_api()  # b dies with the request in hand
        asking.join(60)
        assert got, "a did not answer"
        assert got[0].status_code == 303, got[0].text
        answer = got[0].json()
        assert answer["result"] == "YES"
        assert set(where(a, answer).values()) == {"local", "c"}
        (warned,) = [m for m in answer["messages"] if "peer b" in m["message"]]
        assert warned["level"] == "WARN"
    finally:
        b.resume_operator()
        if b.apis[-1].poll() is not None:
            b.start_api()
    wait_for(
        lambda: a.get("brokerpeer", "b")["status"].get("reachable") is True, 60, "b to be reachable again"
    )


def test_with_every_peer_down_the_answer_is_this_brokers_own_offers_and_a_warning_per_peer(
    fed: dict[str, Site],
) -> None:
    a, b, c = fed["a"], fed["b"], fed["c"]
    b.kill_api()
    c.kill_api()
    try:
        answer = ask(a, ivoa_request(cores=1, duration="PT1M"))
        assert answer["result"] == "YES", answer
        assert set(where(a, answer).values()) == {"local"}
        for name in ("b", "c"):  # asked and refused, or already found down by a probe: named either way
            (warned,) = [m for m in answer["messages"] if f"peer {name}" in m["message"]]
            assert warned["level"] == "WARN", warned
    finally:
        for site in (b, c):
            site.start_api()
    for name in ("b", "c"):
        wait_for(
            lambda name=name: a.get("brokerpeer", name)["status"].get("reachable") is True,
            60,
            f"{name} to be reachable again",
        )


def test_a_peer_lost_mid_session_leaves_a_message_then_fails_the_session(fed: dict[str, Site]) -> None:
    a, c = fed["a"], fed["c"]
    answer = ask(a, ivoa_request(cores=1, duration="PT10M"))
    places = where(a, answer)
    chosen = first(answer, places, "c")
    with a.client() as client:
        assert client.post(chosen["href"], content=json.dumps(ACCEPT), headers=JSON).status_code == 200
    wait_for(lambda: phase_of(a, chosen["uuid"]) == "RUNNING", 120, "a to see c's session RUNNING")
    c.kill_api()
    try:
        lost = wait_for(
            lambda: (
                (a.get("execution", chosen["uuid"]).get("status") or {})
                .get("remote", {})
                .get("unreachableSince")
                and a.get("execution", chosen["uuid"])
            ),
            60,
            "a to notice c is gone",
        )
        assert lost["status"]["phase"] == "RUNNING"
        assert "peer c does not answer about the session" in lost["status"]["message"]
        with a.client() as client:
            shown = client.get(chosen["href"]).json()
        assert any(m["level"] == "WARN" and "peer c" in m["message"] for m in shown["messages"])
        a.kube.run("wait", f"execution/{chosen['uuid']}", "-n", a.namespace,
                   "--for=jsonpath={.status.phase}=FAILED", "--timeout=90s", timeout=100)  # fmt: skip
        failed = a.get("execution", chosen["uuid"])["status"]
        assert "peer c has not answered about the session since" in failed["message"]
    finally:
        c.start_api()
    wait_for(
        lambda: a.get("brokerpeer", "c")["status"].get("reachable") is True, 60, "c to be reachable again"
    )


def test_no_token_of_a_leaves_a(fed: dict[str, Site]) -> None:
    """After everything above: a's token for its peers is in no object, Event, log or answer of a."""
    a = fed["a"]
    answer = ask(a, ivoa_request(cores=1))
    token = broker_token(a.name)
    with a.client() as client:
        texts = [json.dumps(answer), client.get(answer["href"]).text]
    for kind in ("brokerpeers", "offersets", "executions", "events"):
        texts.append(a.kube.run("get", kind, "-n", a.namespace, "-o", "json").stdout)
    texts.append(a.operator_log.read_text(errors="replace"))
    texts.append((a.log_dir / f"{a.name}-api.log").read_text(errors="replace"))
    assert texts[2].count('"kind": "BrokerPeer"') >= 2  # the objects were there to be read
    assert not [t for t in texts if token in t]
    assert ALICE not in texts[0]
