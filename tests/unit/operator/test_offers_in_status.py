"""Offers held in their OfferSet's status: names, the Execution a client's word writes, and how long
the operator's ledger counts each offer (until it expires, a sibling is accepted or the set goes)."""

from __future__ import annotations

from typing import Any

import pytest

from eb_operator.cluster.convert import is_uuid, recorded_phase
from eb_operator.cluster.offer_status import (
    find_offer,
    new_offerset_name,
    offer_execution,
    offer_name,
    offer_refs,
    offerset_of,
)
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator.state import FORGET_OFFERS_AFTER, ClusterState, execution_view

pytestmark = pytest.mark.unit

T0 = parse_instant("2030-01-01T00:00:00Z")


def reservation(node: str = "n1", expires: int = T0 + 300) -> dict[str, Any]:
    return {
        "node": node,
        "prepareStart": format_instant(T0),
        "start": format_instant(T0),
        "duration": "PT1H",
        "releaseEnd": format_instant(T0 + 3600),
        "expires": format_instant(expires),
        "cores": 2,
        "memoryGiB": 4,
        "storageGiB": 0,
        "gpus": 0,
    }


def offerset(name: str = "set", n: int = 2, expires: int = T0 + 300, **status: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "uid": "set-uid", "resourceVersion": "5"}
    offers = [
        {
            "name": offer_name(meta, i),
            "uuid": offer_name(meta, i),
            "reservation": reservation(f"n{i}", expires),
        }
        for i in range(n)
    ]
    return {
        "metadata": meta,
        "spec": {"owner": "alice", "request": {"name": "asked"}},
        "status": {"result": "YES" if offers else "NO", "offers": offers, **status},
    }


def written(s: dict[str, Any], i: int, phase: str | None, rv: int = 7) -> dict[str, Any]:
    """Offer ``i`` of set ``s`` written as an Execution, with a status phase when given."""
    body = offer_execution(s, s["status"]["offers"][i], desired="ACCEPTED")
    body["metadata"] |= {"uid": f"x{i}", "resourceVersion": str(rv), "generation": 1}
    body["status"] = {"phase": phase} if phase else {}
    return body


def test_rest_made_sets_name_their_offers_so_the_set_is_found_from_a_session_uuid() -> None:
    name = new_offerset_name()
    assert is_uuid(name)
    assert name.endswith("00")
    assert new_offerset_name() != name
    offers = [offer_name({"name": name, "uid": "u"}, i) for i in range(32)]
    assert len(set(offers)) == 32
    assert all(is_uuid(o) and offerset_of(o) == name for o in offers)
    assert offerset_of(name) is None  # a set's own uuid is no offer
    assert offerset_of("not-a-uuid") is None
    assert offerset_of(name[:-2] + "ff") is None  # past the most offers a set can hold


def test_sets_named_by_kubectl_users_get_deterministic_uuid_offer_names() -> None:
    meta = {"name": "my-request", "uid": "0c6a1d5e-0000-4000-8000-000000000001"}
    assert offer_name(meta, 0) == offer_name(meta, 0)
    assert offer_name(meta, 0) != offer_name(meta, 1)
    assert is_uuid(offer_name(meta, 3))


def test_an_offer_is_written_as_an_execution_of_its_set_with_the_clients_word() -> None:
    s = offerset()
    ref = s["status"]["offers"][1]
    assert find_offer(s, ref["name"]) == ref
    assert find_offer(s, "other") is None
    assert offer_refs({"status": {}}) == []
    body = offer_execution(s, ref, desired="REJECTED")
    assert body == {
        "apiVersion": "executionbroker.ivoa.net/v1alpha1",
        "kind": "Execution",
        "metadata": {
            "name": ref["name"],
            "namespace": "ns",
            "labels": {
                "app.kubernetes.io/managed-by": "eb-operator",
                "executionbroker.ivoa.net/offerset": "set",
            },
            "annotations": {"executionbroker.ivoa.net/initial-phase": "OFFERED"},
            "ownerReferences": [
                {
                    "apiVersion": "executionbroker.ivoa.net/v1alpha1",
                    "kind": "OfferSet",
                    "name": "set",
                    "uid": "set-uid",
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "offerSet": "set",
            "owner": "alice",
            "desiredPhase": "REJECTED",
            "reservation": reservation("n1"),
        },
    }
    assert "desiredPhase" not in offer_execution(s, ref)["spec"]  # as shown before anyone acts on it


def test_an_answered_set_holds_each_offer_until_it_expires() -> None:
    state = ClusterState()
    s = offerset(n=2, expires=T0 + 300)
    state.on_offerset(s)
    keys = {f"ns/{o['name']}" for o in s["status"]["offers"]}
    assert {k for k in keys if k in state.ledger} == keys
    assert state.offer("ns/set", s["status"]["offers"][0]["name"]) == reservation("n0")
    assert state.purge_offers(T0 + 299) == 0
    assert state.purge_offers(T0 + 300) == 2
    assert not any(k in state.ledger for k in keys)
    first = s["status"]["offers"][0]["name"]
    assert state.offer("ns/set", first) == reservation("n0")  # known a while: a late accept is EXPIRED
    state.purge_offers(T0 + 300 + FORGET_OFFERS_AFTER)
    assert state.offer("ns/set", first) is None  # then forgotten: memory stays bounded


def test_an_unanswered_or_no_set_holds_nothing() -> None:
    state = ClusterState()
    state.on_offerset({"metadata": {"name": "q", "namespace": "ns"}, "spec": {}})
    state.on_offerset(offerset("no", n=0))
    assert len(state.ledger) == 0


def test_a_deleted_set_releases_its_offers_but_not_one_written_as_an_execution() -> None:
    state = ClusterState()
    s = offerset(n=2)
    state.on_offerset(s)
    state.on_execution(written(s, 0, phase=None))  # written, not yet accepted: still OFFERED
    state.on_offerset(s, deleted=True)
    first, second = (f"ns/{o['name']}" for o in s["status"]["offers"])
    assert first in state.ledger  # the Execution holds it (and goes with its owner, the set)
    assert second not in state.ledger


def test_accepting_one_offer_releases_its_siblings_also_when_loaded_after_a_restart() -> None:
    s = offerset(n=3)
    first, *others = (f"ns/{o['name']}" for o in s["status"]["offers"])

    live = ClusterState()
    live.on_offerset(s)
    live.on_execution(written(s, 0, phase="ACCEPTED"))
    assert first in live.ledger
    assert not any(k in live.ledger for k in others)

    restarted = ClusterState()  # the Executions are loaded before the sets
    restarted.load([], [], [written(s, 0, phase="ACCEPTED")], [s])
    assert first in restarted.ledger
    assert not any(k in restarted.ledger for k in others)


def test_an_offer_written_as_an_execution_is_counted_once_and_as_that_execution() -> None:
    state = ClusterState()
    s = offerset(n=1)
    state.on_offerset(s)
    key = f"ns/{s['status']['offers'][0]['name']}"
    state.on_execution(written(s, 0, phase="REJECTED"))
    assert key not in state.ledger  # rejected: frees it at once
    state.on_offerset(s)  # a later event of the set does not bring it back
    assert key not in state.ledger
    assert len(state.ledger) == 0


def named(s: dict[str, Any], i: int) -> dict[str, Any]:
    """Offer ``i`` of set ``s`` as a kubectl user writes it: its name, the set and the word only."""
    name = s["status"]["offers"][i]["name"]
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"k{i}",
            "resourceVersion": "8",
            "generation": 1,
        },
        "spec": {"offerSet": s["metadata"]["name"], "desiredPhase": "ACCEPTED"},
    }


def test_an_offer_written_by_name_only_keeps_holding_until_its_reservation_is_copied_in() -> None:
    """Before the operator copies the reservation in, the capacity must not look free to the next
    decision: else it could be given away, and the accept then refused for capacity."""
    s = offerset(n=2)
    key = f"ns/{s['status']['offers'][0]['name']}"

    live = ClusterState()
    live.on_offerset(s)
    live.on_execution(named(s, 0))
    assert live.ledger.get(key) is not None
    assert live.ledger.get(key).node == "n0"  # type: ignore[union-attr]

    restarted = ClusterState()  # the Execution is listed before its set
    restarted.load([], [], [named(s, 0)], [s])
    assert restarted.ledger.get(key) == live.ledger.get(key)
    assert len(restarted.ledger) == 2


def test_offers_of_a_set_with_an_accepted_offer_are_forgotten_in_time_too() -> None:
    """Known to the operator (for a late kubectl accept) but not held; then forgotten, so its
    memory stays bounded by the recent offers also when an offer was accepted."""
    s = offerset(n=2, expires=T0 + 300)
    state = ClusterState()
    state.load([], [], [written(s, 0, phase="ACCEPTED")], [s])
    second = s["status"]["offers"][1]["name"]
    assert f"ns/{second}" not in state.ledger
    assert state.offer("ns/set", second) == reservation("n1")
    state.purge_offers(T0 + 300 + FORGET_OFFERS_AFTER)
    assert state.offers == {}


# --- offers held at peer brokers (docs/federation.md) ------------------------------------------


def with_peer_offer(s: dict[str, Any], expires: int = T0 + 300) -> dict[str, Any]:
    meta = s["metadata"]
    name = offer_name(meta, len(s["status"]["offers"]))
    s["status"]["offers"].append(
        {
            "name": name,
            "uuid": name,
            "peer": {
                "name": "site-b",
                "session": "91d2c3a4-0000-4000-8000-000000000001",
                "href": "https://b.example.org/sessions/91d2c3a4-0000-4000-8000-000000000001",
                "expires": format_instant(expires),
                "start": format_instant(T0 + 60),
            },
            "offered": {"executable": {"type": "x"}},
        }
    )
    return s


def test_an_offer_held_at_a_peer_is_known_but_holds_no_capacity_here() -> None:
    state = ClusterState()
    s = with_peer_offer(offerset(n=1))
    state.on_offerset(s)
    remote = offer_refs(s)[1]["name"]
    assert state.peer_offer("ns/set", remote) == s["status"]["offers"][1]["peer"]
    assert f"ns/{remote}" not in state.ledger
    assert f"ns/{offer_refs(s)[0]['name']}" in state.ledger  # its local sibling holds its own
    state.purge_offers(T0 + 300 + FORGET_OFFERS_AFTER)
    assert state.peer_offer("ns/set", remote) is None  # forgotten in time, as local offers are


def test_a_set_of_peer_offers_only_is_recorded_once_and_released_when_deleted() -> None:
    state = ClusterState()
    s = with_peer_offer(offerset(n=0))
    state.on_offerset(s)
    name = offer_refs(s)[0]["name"]
    s["status"]["offers"][0]["peer"]["name"] = "changed"
    state.on_offerset(s)  # a later event of an answered set changes nothing
    assert state.peer_offer("ns/set", name)["name"] == "site-b"  # type: ignore[index]
    state.on_offerset(s, deleted=True)
    assert state.peer_offer("ns/set", name) is None


def test_a_clients_word_on_a_peer_offer_writes_where_it_is_held_not_a_reservation() -> None:
    s = with_peer_offer(offerset(n=1))
    ref = offer_refs(s)[1]
    body = offer_execution(s, ref, "ACCEPTED")
    assert body["spec"] == {
        "offerSet": "set",
        "owner": "alice",
        "desiredPhase": "ACCEPTED",
        "peer": ref["peer"],
    }
    assert recorded_phase(body) == "OFFERED"
    view = execution_view({**body, "metadata": {**body["metadata"], "uid": "u", "resourceVersion": "1"}})
    assert view.peer == ref["peer"]
    assert view.expires == T0 + 300
