"""IVOA documents built from the CRs: phases with lazy expiry, options, offered values, schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eb_operator.api import views
from eb_operator.api.wire import Dialect, to_dialect
from eb_operator.engine.types import Phase
from eb_operator.model.times import format_instant, to_epoch

pytestmark = pytest.mark.unit

NOW = datetime(2026, 8, 14, 8, 0, 0, tzinfo=UTC)
BASE = "https://broker.example.org"
OFFERSET_NAME = "6b0c1d2e-0000-4000-8000-000000000001"
OFFER_NAME = "a1f20000-0000-5000-8000-000000000002"
DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
STORAGE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/storage/simple-storage-resource-1.0"


def request() -> dict[str, Any]:
    return {
        "name": "nb-demo",
        "executable": {"type": DOCKER, "name": "demo", "image": {"locations": ["busybox:latest"]}},
        "resources": {
            "compute": [{"type": COMPUTE, "name": "c1", "cores": {"requested": {"min": 4, "max": 8}}}],
            "storage": [{"type": STORAGE, "name": "scratch", "size": {"requested": {"min": 10}}}],
        },
        "schedule": {"requested": {"duration": "PT1H", "start": ["2026-08-14T09:00:00Z/PT3H"]}},
    }


def offerset(result: str = "YES", offers: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": OFFERSET_NAME, "creationTimestamp": "2026-08-14T07:59:59Z"},
        "spec": {"owner": "alice", "request": request()},
        "status": {
            "result": result,
            "created": "2026-08-14T08:00:00Z",
            "offers": [{"name": OFFER_NAME, "uuid": OFFER_NAME}][:offers],
            "messages": []
            if result == "YES"
            else [{"type": "urn:no-capacity", "level": "ERROR", "message": "full"}],
        },
    }


def execution(
    phase: str | None = "OFFERED", expires: datetime = NOW + timedelta(minutes=5)
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": OFFER_NAME, "creationTimestamp": "2026-08-14T08:00:00Z"},
        "spec": {
            "offerSet": OFFERSET_NAME,
            "owner": "alice",
            "reservation": {
                "node": "n1",
                "prepareStart": "2026-08-14T09:50:00Z",
                "start": "2026-08-14T10:00:00Z",
                "duration": "PT2H",
                "releaseEnd": "2026-08-14T12:05:00Z",
                "expires": format_instant(to_epoch(expires)),
                "cores": 8,
                "memoryGiB": 16,
                "storageGiB": 10,
            },
        },
    }
    if phase is not None:
        obj["status"] = {"phase": phase, "created": "2026-08-14T08:00:00Z"}
    return obj


def test_an_offer_as_a_session() -> None:
    doc = views.session_document(execution(), offerset(), BASE, NOW)
    assert doc["uuid"] == OFFER_NAME
    assert doc["href"] == f"{BASE}/sessions/{OFFER_NAME}"
    assert doc["type"] == views.SESSION_TYPE
    assert doc["phase"] == "OFFERED"
    assert doc["expires"] == "2026-08-14T08:05:00Z"
    compute = doc["resources"]["compute"][0]
    assert compute["cores"] == {"requested": {"min": 4, "max": 8}, "offered": {"min": 8, "max": 8}}
    assert compute["memory"]["offered"] == {"min": 16, "max": 16}
    assert doc["resources"]["storage"][0]["size"]["offered"] == {"min": 10, "max": 10}
    assert doc["schedule"] == {
        "requested": {"duration": "PT1H", "start": ["2026-08-14T09:00:00Z/PT3H"]},
        "preparing": {"start": "2026-08-14T09:50:00Z/PT0S", "duration": "PT10M"},
        "executing": {"start": "2026-08-14T10:00:00Z/PT0S", "duration": "PT2H"},
        "releasing": {"start": "2026-08-14T12:00:00Z/PT0S", "duration": "PT5M"},
    }
    assert doc["options"] == [
        {"type": "uri:enum-value-option", "path": "phase", "values": ["ACCEPTED", "REJECTED"]}
    ]
    assert doc["executable"]["image"] == {"locations": ["busybox:latest"]}


def test_an_offer_without_status_yet_is_offered() -> None:
    assert views.session_document(execution(phase=None), offerset(), BASE, NOW)["phase"] == "OFFERED"


@pytest.mark.parametrize(
    ("phase", "at", "shown"),
    [
        pytest.param("OFFERED", NOW + timedelta(minutes=4, seconds=59), "OFFERED", id="before expiry"),
        pytest.param("OFFERED", NOW + timedelta(minutes=5), "EXPIRED", id="at expiry (now >= expires)"),
        pytest.param("OFFERED", NOW + timedelta(hours=1), "EXPIRED", id="long after expiry"),
        pytest.param("ACCEPTED", NOW + timedelta(hours=1), "ACCEPTED", id="accepted sessions do not expire"),
    ],
)
def test_lazy_expiry(phase: str, at: datetime, shown: str) -> None:
    assert views.shown_phase(execution(phase), at) == shown


@pytest.mark.parametrize(
    ("phase", "values"),
    [
        ("OFFERED", ["ACCEPTED", "REJECTED"]),
        ("ACCEPTED", ["CANCELLED"]),
        ("WAITING", ["CANCELLED"]),
        ("PREPARING", ["CANCELLED"]),
        ("READY", ["CANCELLED"]),
        ("RUNNING", ["CANCELLED"]),
        ("RELEASING", []),
        ("COMPLETED", []),
        ("FAILED", []),
        ("CANCELLED", []),
        ("REJECTED", []),
        ("EXPIRED", []),
    ],
)
def test_options_by_phase(phase: str, values: list[str]) -> None:
    options = views.phase_option_documents(Phase(phase))
    assert [v for o in options for v in o["values"]] == values


def test_expired_session_advertises_nothing() -> None:
    doc = views.session_document(execution(), offerset(), BASE, NOW + timedelta(hours=1))
    assert doc["phase"] == "EXPIRED"
    assert doc["options"] == []


def test_offerset_document() -> None:
    doc = views.offerset_document(offerset(), [execution()], BASE, NOW)
    assert doc["uuid"] == OFFERSET_NAME
    assert doc["href"] == f"{BASE}/offersets/{OFFERSET_NAME}"
    assert doc["result"] == "YES"
    assert doc["name"] == "nb-demo"
    assert [o["uuid"] for o in doc["offers"]] == [OFFER_NAME]


def test_no_answer_keeps_its_messages() -> None:
    doc = views.offerset_document(offerset("NO", offers=0), [], BASE, NOW)
    assert doc["result"] == "NO"
    assert doc["offers"] == []
    assert doc["messages"][0]["level"] == "ERROR"


@pytest.mark.parametrize("dialect", [Dialect.IVOA_STD, Dialect.C26])
def test_documents_render_in_both_dialects(dialect: Dialect) -> None:
    doc = views.offerset_document(offerset(), [execution()], BASE, NOW)
    out = to_dialect(doc, "offerset", dialect)
    if dialect is Dialect.C26:
        assert out["meta"]["uuid"] == OFFERSET_NAME
        assert "kind" in out["offers"][0]
    else:
        assert out["uuid"] == OFFERSET_NAME
        assert out["offers"][0]["phase"] == "OFFERED"


@pytest.mark.parametrize(
    "phase", ["OFFERED", "ACCEPTED", "WAITING", "READY", "RUNNING", "COMPLETED", "FAILED", "REJECTED"]
)
def test_documents_validate_against_the_official_schemas(phase: str) -> None:
    from tests.support.ivoa_schema import c26_validator, errors, ivoa_std_validator

    yes = views.offerset_document(offerset(), [execution(phase)], BASE, NOW)
    no = views.offerset_document(offerset("NO", offers=0), [], BASE, NOW)
    for doc in (yes, no):
        assert (
            errors(ivoa_std_validator("OfferSetResponse"), to_dialect(doc, "offerset", Dialect.IVOA_STD))
            == []
        )
        assert errors(c26_validator("OfferSetResponse"), to_dialect(doc, "offerset", Dialect.C26)) == []
    session = yes["offers"][0]
    assert (
        errors(
            ivoa_std_validator("ExecutionSessionResponse"), to_dialect(session, "session", Dialect.IVOA_STD)
        )
        == []
    )
    assert (
        errors(c26_validator("AbstractExecutionSession"), to_dialect(session, "session", Dialect.C26)) == []
    )


def test_siblings_of_an_accepted_offer_read_as_rejected() -> None:
    accepted, sibling = execution("ACCEPTED"), execution("OFFERED")
    sibling["metadata"]["name"] = OFFER_NAME[:-1] + "9"
    doc = views.offerset_document(offerset(), [accepted, sibling], BASE, NOW)
    assert [o["phase"] for o in doc["offers"]] == ["ACCEPTED", "REJECTED"]
    assert doc["offers"][1]["options"] == []


# --- sessions held at peer brokers (docs/federation.md) ----------------------------------------

PEER_OFFERED = {
    "executable": {"type": DOCKER, "image": {"locations": ["busybox:latest"]}},
    "resources": {
        "compute": [{"type": COMPUTE, "cores": {"requested": {"min": 4}, "offered": {"min": 6, "max": 6}}}]
    },
    "schedule": {"executing": {"start": "2026-08-14T09:30:00Z/PT0S", "duration": "PT2H"}},
}


def held_at_peer(status: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    ofs = offerset()
    peer = {
        "name": "site-b",
        "session": "91d2c3a4-0000-4000-8000-000000000001",
        "href": "https://b.example.org/sessions/91d2c3a4-0000-4000-8000-000000000001",
        "expires": format_instant(to_epoch(NOW + timedelta(minutes=5))),
    }
    ofs["status"]["offers"] = [
        {"name": OFFER_NAME, "uuid": OFFER_NAME, "peer": peer, "offered": PEER_OFFERED}
    ]
    obj: dict[str, Any] = {
        "metadata": {"name": OFFER_NAME, "creationTimestamp": "2026-08-14T08:00:00Z"},
        "spec": {"offerSet": OFFERSET_NAME, "owner": "alice", "peer": peer},
    }
    if status is not None:
        obj["status"] = status
    return obj, ofs


def test_a_session_held_at_a_peer_shows_what_the_peer_offered_as_a_session_of_this_broker() -> None:
    obj, ofs = held_at_peer()
    doc = views.session_document(obj, ofs, BASE, NOW)
    assert doc["href"] == f"{BASE}/sessions/{OFFER_NAME}"
    assert doc["phase"] == "OFFERED"
    assert doc["expires"] == "2026-08-14T08:05:00Z"
    assert doc["resources"] == PEER_OFFERED["resources"]
    assert doc["schedule"] == PEER_OFFERED["schedule"]
    assert doc["executable"] == PEER_OFFERED["executable"]
    assert "b.example.org" not in str(doc)  # where it is held is the broker's business


def test_a_session_whose_peer_is_silent_carries_a_warning() -> None:
    status = {
        "phase": "RUNNING",
        "message": "peer site-b does not answer about the session (ConnectError)",
        "remote": {"phase": "RUNNING", "unreachableSince": "2026-08-14T07:59:00Z"},
    }
    obj, ofs = held_at_peer(status)
    doc = views.session_document(obj, ofs, BASE, NOW)
    assert doc["phase"] == "RUNNING"
    assert doc["messages"] == [
        {"type": "urn:ivoa:eb:peer-unreachable", "level": "WARN", "message": status["message"]}
    ]


def test_storage_shows_its_uuid_href_expiry_and_delivery_once_the_operator_recorded_them() -> None:
    from eb_operator.model.reuse import storage_uuid

    set_ = offerset()
    results = {
        "type": STORAGE,
        "name": "results",
        "size": {"requested": {"min": 2}},
        "stageout": {"s3": {"endpoint": "http://s3:9000", "bucket": "out"}},
    }
    earlier = "7d0e6a36-9a35-5e0a-b7a3-0d6a2b1e9c11"
    set_["spec"]["request"]["resources"]["storage"] += [
        results,
        {"type": STORAGE, "name": "old", "href": earlier},
    ]
    offered = views.session_document(execution(), set_, BASE, NOW)
    scratch, out, old = offered["resources"]["storage"]
    assert scratch["uuid"] == storage_uuid(OFFER_NAME, 0)
    assert scratch["href"] == f"{BASE}/sessions/{OFFER_NAME}/storage/{storage_uuid(OFFER_NAME, 0)}"
    assert old["uuid"] == earlier  # the earlier session's storage keeps its uuid
    assert old["href"] == f"{BASE}/sessions/{OFFER_NAME}/storage/{earlier}"
    assert "expires" not in out  # an offer only proposes storage
    ran = execution("FAILED")
    ran["status"]["storage"] = [
        {
            "index": 1,
            "uuid": storage_uuid(OFFER_NAME, 1),
            "claim": "c",
            "sizeGiB": 2,
            "expires": "2026-08-15T12:00:00Z",
            "delivers": True,
            "delivery": {"state": "Failed", "message": "staging out failed: nope"},
        },
        {
            "index": 2,
            "uuid": earlier,
            "claim": "old",
            "sizeGiB": 5,
            "expires": "2026-08-20T00:00:00Z",
            "reused": True,
        },
    ]
    doc = views.session_document(ran, set_, BASE, NOW)
    _, out, old = doc["resources"]["storage"]
    assert out["expires"] == "2026-08-15T12:00:00Z"
    assert out["stageout"]["delivery"] == {"state": "Failed", "message": "staging out failed: nope"}
    assert old["size"]["offered"] == {"min": 5, "max": 5}
    assert old["expires"] == "2026-08-20T00:00:00Z"
    assert views.storage_document(doc, earlier) == old
    assert views.storage_document(doc, storage_uuid(OFFER_NAME, 7)) is None
    assert to_dialect(doc, "session", Dialect.C26)  # the additions render in C26 too


def test_the_pod_of_a_session_is_where_the_operator_recorded_it() -> None:
    ex = execution("RUNNING")
    ex["metadata"]["namespace"] = "sessions"
    assert views.pod_of(ex) == ("sessions", f"eb-{OFFER_NAME}")
    ex["status"] |= {"podName": "eb-x", "childNamespace": "eb-alice-1234"}
    assert views.pod_of(ex) == ("eb-alice-1234", "eb-x")
