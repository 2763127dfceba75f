"""Storage that outlives its session: the claims of results to stage out, how long claims are kept
(delivered or not, reused or not), and storage an earlier session made, mounted again: found for
its owner only, held by one session at a time, its lifetime extended."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.support.wire import compute, docker, execution_object, request, storage, volume

from eb_operator.engine.types import Demand, Phase, Window
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.reuse import named_storage, storage_uuid
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator import storage as claims
from eb_operator.operator import volumes
from eb_operator.operator.builders import storage as st
from eb_operator.operator.requests import interpret
from eb_operator.operator.state import ClusterState

pytestmark = pytest.mark.unit

T0 = parse_instant("2030-01-01T10:00:00Z")
S3 = "http://s3.example.org:7070"
U = "7d0e6a36-9a35-5e0a-b7a3-0d6a2b1e9c11"
HOLDS = "executionbroker.ivoa.net/holds"
DELETE_AFTER = "executionbroker.ivoa.net/delete-after"
LIFETIME = "executionbroker.ivoa.net/lifetime"
ENDED = "executionbroker.ivoa.net/session-ended"
PODS = "executionbroker.ivoa.net/pod"
KEEP = "executionbroker.ivoa.net/keep-undelivered"


def execution(items: list[dict[str, Any]], status: dict[str, Any] | None = None) -> dict[str, Any]:
    req = request(docker(), compute(volumes=[volume("results", "/results", "READWRITE")]), storage=items)
    return execution_object(req, owner="alice", node="n", cores=1, memory_gib=1, status=status)


def test_results_to_stage_out_live_in_a_claim_kept_a_day_when_they_are_not_delivered() -> None:
    items = [storage("results", 2, stageout={"s3": {"endpoint": S3, "bucket": "b"}})]
    ex = execution(items)
    plan = st.plan_storage(ex, ex["spec"]["request"], "local", 86400, "eb-job-1,eb-job-1-stage-out", 86400)
    [claim] = plan.claims
    notes = claim["metadata"]["annotations"]
    assert notes[LIFETIME] == "PT0S"  # delivered: deleted when the session ends
    assert notes[KEEP] == "P1D"  # not delivered: kept a day for the owner to mount it again
    assert notes[DELETE_AFTER] == format_instant(T0 + 3660 + 86400)
    assert notes[PODS] == "eb-job-1,eb-job-1-stage-out"
    assert notes["executionbroker.ivoa.net/owner"] == "alice"
    assert claim["spec"]["resources"] == {"requests": {"storage": "2Gi"}}
    assert plan.volumes == [
        {"name": "storage-0", "persistentVolumeClaim": {"claimName": "eb-job-1-storage-0"}}
    ]
    with pytest.raises(ValueError, match="storageClassName"):
        st.plan_storage(execution(items), execution(items)["spec"]["request"], None, 86400)


def test_storage_an_earlier_session_made_is_mounted_from_the_claim_found_for_it() -> None:
    items = [{**storage("results"), "href": f"https://eb.example.org/sessions/s/storage/{U}"}]
    found = {"storage": [{"index": 0, "uuid": U, "claim": "eb-earlier-storage-0", "reused": True}]}
    plan = st.plan_storage(execution(items, found), execution(items)["spec"]["request"], None, 86400)
    assert plan.claims == []  # nothing new: not even a storage class is needed
    assert plan.volumes == [
        {"name": "storage-0", "persistentVolumeClaim": {"claimName": "eb-earlier-storage-0"}}
    ]
    assert plan.mounts == [{"name": "storage-0", "mountPath": "/results"}]
    with pytest.raises(ValueError, match=f"the storage {U} it names was not found"):
        st.plan_storage(execution(items), execution(items)["spec"]["request"], None, 86400)


@pytest.mark.parametrize(
    ("href", "named"),
    [
        (f"https://eb.example.org/sessions/x/storage/{U}", U),
        (f"https://eb.example.org/sessions/x/storage/{U}/", U),
        (U.upper(), U),
        ("https://eb.example.org/sessions/x/storage/results", ""),
        (None, None),
    ],
    ids=[
        "the href the broker reported",
        "with a trailing slash",
        "the bare uuid",
        "no uuid in it",
        "no href",
    ],
)
def test_a_storage_item_names_earlier_storage_by_its_href(href: str | None, named: str | None) -> None:
    assert named_storage(href) == named


def test_storage_uuids_are_stable_and_distinct() -> None:
    a = storage_uuid("0b8c1a3e-1111-4222-8333-444455556601", 0)
    assert a == storage_uuid("0B8C1A3E-1111-4222-8333-444455556601", 0)
    assert a != storage_uuid("0b8c1a3e-1111-4222-8333-444455556601", 1)
    assert a != storage_uuid("0b8c1a3e-1111-4222-8333-444455556602", 0)


# --- how long a claim is kept ------------------------------------------------------------------------


def claim(**notes: str) -> dict[str, Any]:
    return {"metadata": {"name": "c", "namespace": "ns", "annotations": notes}}


@pytest.mark.parametrize(
    ("notes", "delivered", "verdict"),
    [
        (
            {DELETE_AFTER: format_instant(T0 + 86400), LIFETIME: "PT0S", KEEP: "P1D"},
            True,
            claims.Verdict(delete=True),
        ),
        (
            {DELETE_AFTER: format_instant(T0 + 86400), LIFETIME: "PT0S", KEEP: "P1D"},
            False,
            claims.Verdict(annotations={ENDED: format_instant(T0), DELETE_AFTER: format_instant(T0 + 86400)}),
        ),
        (
            {DELETE_AFTER: format_instant(T0 + 9 * 86400), LIFETIME: "P7D", KEEP: "P7D"},
            False,
            claims.Verdict(
                annotations={ENDED: format_instant(T0), DELETE_AFTER: format_instant(T0 + 7 * 86400)}
            ),
        ),
    ],
    ids=[
        "results delivered, no lifetime: deleted at once",
        "results not delivered: kept a day",
        "a lifetime longer than the day: kept its lifetime either way",
    ],
)
def test_a_results_claim_is_kept_longer_when_its_results_were_not_delivered(
    notes: dict[str, str], delivered: bool, verdict: claims.Verdict
) -> None:
    assert claims.claim_verdict(claim(**notes), True, T0, delivered) == verdict


def holds(**spans: tuple[int, int]) -> str:
    return st.holds_text(dict(spans.items()))


@pytest.mark.parametrize(
    ("phases", "over"),
    [
        ({"a": Phase.COMPLETED, "b": Phase.WAITING}, (False, True)),
        ({"a": Phase.COMPLETED, "b": Phase.FAILED}, (True, False)),
        ({"a": Phase.FAILED, "b": Phase.COMPLETED}, (True, True)),
        ({"a": Phase.COMPLETED, "b": False}, (True, True)),
    ],
    ids=[
        "a later session is still to run: not over",
        "the last session did not deliver: over, undelivered",
        "the last session delivered: over, delivered",
        "the last session is gone: over, as delivered",
    ],
)
def test_a_claim_is_over_once_every_session_holding_it_has_ended(
    phases: dict[str, Phase | bool], over: tuple[bool, bool]
) -> None:
    c = claim(**{HOLDS: holds(a=(T0, T0 + 100), b=(T0 + 200, T0 + 300))})
    assert claims.sessions_over(c, phases.get) == over


def test_a_claim_made_before_holds_were_recorded_is_held_by_its_session() -> None:
    c = {"metadata": {"labels": {"executionbroker.ivoa.net/execution-uid": "a"}, "annotations": {}}}
    assert claims.sessions_over(c, {"a": Phase.RUNNING}.get) == (False, True)
    assert claims.sessions_over(c, {"a": Phase.COMPLETED}.get) == (True, True)


# --- holding storage for a later session -------------------------------------------------------------


def held(**extra: str) -> dict[str, Any]:
    notes = {
        HOLDS: holds(a=(T0, T0 + 3600)),
        DELETE_AFTER: format_instant(T0 + 3600 + 86400),
        LIFETIME: "P1D",
        ENDED: format_instant(T0 + 3000),
        PODS: "eb-a",
        **extra,
    }
    return {"metadata": {"name": "eb-a-storage-0", "namespace": "ns", "annotations": notes}}


def test_a_later_session_holds_the_storage_and_extends_its_lifetime() -> None:
    later = (T0 + 7200, T0 + 10800)
    patch = volumes.hold_patch(held(), "b", later, 3 * 86400, ["eb-b"], {"a": Phase.COMPLETED}.get)
    assert patch == {
        HOLDS: holds(a=(T0, T0 + 3600), b=later),
        DELETE_AFTER: format_instant(T0 + 10800 + 3 * 86400),
        LIFETIME: "P3D",
        ENDED: None,  # the new session's end decides anew
        PODS: "eb-a,eb-b",
    }


def test_a_later_session_without_a_lifetime_never_shortens_the_storage() -> None:
    later = (T0 + 7200, T0 + 10800)
    patch = volumes.hold_patch(held(), "b", later, 0, ["eb-b"], {"a": Phase.COMPLETED}.get)
    assert patch is not None
    assert patch[DELETE_AFTER] == format_instant(T0 + 3600 + 86400)
    assert patch[LIFETIME] == "P1D"


def test_storage_held_by_a_running_session_cannot_be_held_over_the_same_time() -> None:
    with pytest.raises(volumes.InUse, match="held by another session"):
        volumes.hold_patch(held(), "b", (T0 + 1800, T0 + 7200), 0, ["eb-b"], {"a": Phase.RUNNING}.get)
    # after it, or once it has ended, it can
    assert volumes.hold_patch(held(), "b", (T0 + 3600, T0 + 7200), 0, [], {"a": Phase.RUNNING}.get)
    assert volumes.hold_patch(held(), "b", (T0 + 1800, T0 + 7200), 0, [], {"a": Phase.FAILED}.get)


def test_holding_again_what_is_already_held_changes_nothing() -> None:
    c = held()
    c["metadata"]["annotations"][HOLDS] = holds(a=(T0, T0 + 3600), b=(T0 + 7200, T0 + 10800))
    c["metadata"]["annotations"][PODS] = "eb-a,eb-b"
    assert (
        volumes.hold_patch(c, "b", (T0 + 7200, T0 + 10800), 0, ["eb-b"], {"a": Phase.COMPLETED}.get) is None
    )


@pytest.mark.parametrize(
    ("meta", "owner", "namespace", "ok"),
    [
        (
            {"namespace": "ns", "annotations": {"executionbroker.ivoa.net/owner": "alice"}},
            "alice",
            "ns",
            True,
        ),
        ({"namespace": "ns", "annotations": {"executionbroker.ivoa.net/owner": "alice"}}, "bob", "ns", False),
        (
            {"namespace": "ns", "annotations": {"executionbroker.ivoa.net/owner": "alice"}},
            "alice",
            "other",
            False,
        ),
        (
            {
                "namespace": "ns",
                "annotations": {"executionbroker.ivoa.net/owner": "alice"},
                "deletionTimestamp": "x",
            },
            "alice",
            "ns",
            False,
        ),
        ({"namespace": "ns", "annotations": {}}, "", "ns", True),
    ],
    ids=["its owner", "someone else", "another namespace", "being deleted", "a kubectl user's, beside it"],
)
def test_only_the_owner_mounts_storage_again_where_its_sessions_run(
    meta: dict[str, Any], owner: str, namespace: str, ok: bool
) -> None:
    assert volumes.mountable({"metadata": meta}, owner, namespace) is ok


def test_a_claims_size_is_what_the_volume_has() -> None:
    assert volumes.size_gib({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}) == 2
    assert (
        volumes.size_gib(
            {
                "spec": {"resources": {"requests": {"storage": "2Gi"}}},
                "status": {"capacity": {"storage": "5Gi"}},
            }
        )
        == 5
    )


# --- one session at a time, decided with the offers ---------------------------------------------------


def test_offers_start_after_the_storage_is_free_or_there_are_none() -> None:
    demand = Demand(1, 1, 1, 1, 60, (Window(T0, T0 + 600), Window(T0 + 1000, T0 + 2000)), preparation=30)
    policy = PlatformPolicy.model_validate({"storageClassName": "local"})
    req = request(docker(), storage=[{**storage("r"), "href": U}])
    interp = interpret(req, policy, T0 - 100, reuse=volumes.Reuse(not_before=T0 + 1200, sizes={0: 3}))
    assert interp.reuses == (U,)
    assert interp.request is not None
    assert interp.request["resources"]["storage"][0]["size"]["offered"] == {"min": 3, "max": 3}
    interp = type(interp)(demand, interp.messages, interp.request, {}, interp.reuses, T0 + 1200)
    after, why = volumes.start_after_holds(interp, ClusterState())
    assert why is None
    assert after is not None
    assert after.windows == (Window(T0 + 1230, T0 + 2000),)
    late = type(interp)(demand, [], None, {}, (U,), T0 + 5000)
    assert volumes.start_after_holds(late, ClusterState()) == (
        None,
        "the storage it mounts again is held by another session until 2030-01-01T11:23:20Z, "
        "after every requested start",
    )


def test_a_storage_nobody_has_is_no() -> None:
    policy = PlatformPolicy()
    req = request(docker(), storage=[{**storage("r"), "href": U}])
    missing = volumes.Reuse(messages=[_no_such(U)])
    interp = interpret(req, policy, T0, reuse=missing)
    assert interp.demand is None
    assert [m["message"] for m in interp.messages] == [
        f"resources/storage/0/href: there is no storage {U} of yours to mount (it may have been deleted "
        "after its lifetime)"
    ]


def _no_such(uuid: str) -> Any:
    from eb_operator.model.common import MessageItem, MessageLevel, MessageType

    return MessageItem.make(
        MessageType.UNRESOLVED_REFERENCE,
        MessageLevel.ERROR,
        "{path}: there is no storage {uuid} of yours to mount (it may have been deleted after its lifetime)",
        {"path": "resources/storage/0/href", "uuid": uuid},
    )


def test_accepting_is_refused_while_another_accepted_session_mounts_the_same_storage() -> None:
    state = ClusterState()

    def put(name: str, phase: str, begin: int, end: int) -> None:
        state.on_execution(
            {
                "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1"},
                "spec": {
                    "request": {"resources": {"storage": [{"href": U}]}},
                    "reservation": {
                        "node": "n",
                        "prepareStart": format_instant(begin),
                        "start": format_instant(begin),
                        "duration": "PT1H",
                        "releaseEnd": format_instant(end),
                        "cores": 1,
                        "memoryGiB": 1,
                    },
                },
                "status": {"phase": phase},
            }
        )

    put("first", "WAITING", T0, T0 + 3600)
    put("second", "OFFERED", T0 + 1800, T0 + 5400)
    put("third", "OFFERED", T0 + 3600, T0 + 7200)
    second = state.executions["ns/second"]
    assert volumes.booked_conflict(state, second) == (
        f"storage {U} is mounted by another session from 2030-01-01T10:00:00Z to 2030-01-01T11:00:00Z"
    )
    assert volumes.booked_conflict(state, state.executions["ns/third"]) is None
    assert volumes.booked_until(state, [U]) == T0 + 3600
    assert json.loads(st.holds_text({"x": (T0, T0 + 1)})) == {
        "x": [format_instant(T0), format_instant(T0 + 1)]
    }
