"""Results out: RELEASING delivers them (the phase machine, one row per rule), the delivery Pod the
operator builds (exact dicts), and what a delivery's containers report."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tests.support.wire import (
    EXECUTION_OWNER,
    RESTRICTED_CONTAINER,
    compute,
    docker,
    execution_object,
    request,
    storage,
    volume,
)

from eb_operator.engine.types import Phase
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator.builders import stageout as so
from eb_operator.operator.builders.pod import PodSettings, session_pods
from eb_operator.operator.builders.stageout import Delivered
from eb_operator.operator.lifecycle import (
    OVERRUN_GRACE,
    Action,
    DeliveryView,
    Facts,
    Outcome,
    Step,
    decide,
    delivery_outcome,
    observe_delivery,
)

pytestmark = pytest.mark.unit

NOW = 1_000_000
END = NOW + 600
RELEASING = Facts(
    now=NOW,
    phase=Phase.RELEASING,
    offered=True,
    reserved=True,
    prepare_start=NOW - 3600,
    start=NOW - 3570,
    release_end=END,
    node="n1",
    delivers=True,
)
SENT = Delivered(0, True, "staged out 2 files, 2880 bytes in 0.20 s (0.0 MB/s)", 2, 2880)
REFUSED = Delivered(
    0,
    False,
    "staging out failed: PUT s3://nope/run/out.fits at http://s3:9000: NoSuchBucket (HTTP 404): gone",
)

CASES: list[tuple[str, Facts, Step]] = [
    (
        "a session without results to deliver completes",
        replace(RELEASING, delivers=False),
        Step(phase=Phase.COMPLETED, reason="Completed", message="the execution completed"),
    ),
    (
        "results to deliver: the delivery Pod is made",
        RELEASING,
        Step(
            reason="Delivering",
            message="staging the results out",
            action=Action.DELIVER,
            wake_at=END + OVERRUN_GRACE,
        ),
    ),
    (
        "a delivery under way is waited for",
        replace(RELEASING, delivery=DeliveryView(name="d", phase="Running")),
        Step(wake_at=END + OVERRUN_GRACE),
    ),
    (
        "a delivery that succeeded completes the session, saying what went out",
        replace(RELEASING, delivery=DeliveryView(name="d", phase="Succeeded", results=(SENT,))),
        Step(
            phase=Phase.COMPLETED,
            reason="Completed",
            message="the execution completed; the results were delivered: 2 files, 2880 bytes",
        ),
    ),
    (
        "a delivery that failed fails the session with the stager's line",
        replace(RELEASING, delivery=DeliveryView(name="d", phase="Failed", results=(REFUSED,))),
        Step(phase=Phase.FAILED, reason="DeliveryFailed", message=f"resources/storage/0: {REFUSED.message}"),
    ),
    (
        "an earlier delivery failed while the Pod still runs: FAILED, and the Pod stopped",
        replace(RELEASING, delivery=DeliveryView(name="d", phase="Pending", results=(REFUSED,))),
        Step(
            phase=Phase.FAILED,
            reason="DeliveryFailed",
            message=f"resources/storage/0: {REFUSED.message}",
            action=Action.DELETE_POD,
        ),
    ),
    (
        "a delivery Pod deleted before it reported fails the session",
        replace(RELEASING, delivery=DeliveryView(name="d", phase="Running", deleting=True)),
        Step(phase=Phase.FAILED, reason="DeliveryFailed", message="the delivery Pod was deleted"),
    ),
    (
        "a delivery still running after the reservation fails the session and is stopped",
        replace(RELEASING, now=END + OVERRUN_GRACE, delivery=DeliveryView(name="d", phase="Running")),
        Step(
            phase=Phase.FAILED,
            reason="Overrun",
            message="the results were still not delivered when the reservation ended at "
            + format_instant(END),
            action=Action.DELETE_POD,
        ),
    ),
    (
        "a final session whose delivery Pod still runs has it stopped",
        replace(RELEASING, phase=Phase.CANCELLED, delivery=DeliveryView(name="d", phase="Running")),
        Step(action=Action.DELETE_POD),
    ),
    (
        "a final session whose delivery Pod ended is left alone",
        replace(RELEASING, phase=Phase.FAILED, delivery=DeliveryView(name="d", phase="Failed")),
        Step(),
    ),
]


@pytest.mark.parametrize(("facts", "step"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_releasing_delivers_the_results(facts: Facts, step: Step) -> None:
    assert decide(facts) == step


def terminated(name: str, code: int, message: str) -> dict[str, Any]:
    return {"name": name, "state": {"terminated": {"exitCode": code, "message": message}}}


@pytest.mark.parametrize(
    ("status", "outcome", "message"),
    [
        (
            {"phase": "Succeeded", "containerStatuses": [terminated("deliver-0", 0, SENT.message)]},
            Outcome.SUCCEEDED,
            "the results were delivered: 2 files, 2880 bytes",
        ),
        (
            {
                "phase": "Failed",
                "initContainerStatuses": [terminated("deliver-0", 0, SENT.message)],
                "containerStatuses": [terminated("deliver-2", 1, "staging out failed: PUT x: AccessDenied")],
            },
            Outcome.FAILED,
            "resources/storage/2: staging out failed: PUT x: AccessDenied",
        ),
        (
            {"phase": "Failed", "reason": "DeadlineExceeded", "message": "Pod was active too long"},
            Outcome.FAILED,
            "the results were not delivered by the end of the reservation (DeadlineExceeded)",
        ),
        (
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "deliver-0",
                        "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "no"}},
                    }
                ],
            },
            Outcome.FAILED,
            "the delivery could not start (ErrImageNeverPull): no",
        ),
        ({"phase": "Running"}, Outcome.PENDING, "delivering the results"),
    ],
    ids=["delivered", "the third delivery refused", "past the reservation", "no stager image", "under way"],
)
def test_a_delivery_pod_reports_each_delivery(status: dict[str, Any], outcome: Outcome, message: str) -> None:
    view = observe_delivery({"metadata": {"name": "eb-x-stage-out"}, "status": status})
    assert delivery_outcome(view) == (outcome, message)


# --- the delivery Pod --------------------------------------------------------------------------------

T0 = parse_instant("2030-01-01T10:00:00Z")
S3 = "http://s3.example.org:7070"
DAV = "https://dav.example.org/results"
STAGER = "eb-stager:9.9.9"
RESOURCES = {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}


def policy(**changes: Any) -> PlatformPolicy:
    base: dict[str, Any] = {
        "storageClassName": "local",
        "images": {"s3Stager": STAGER},
        "dataEndpoints": [
            {"endpoint": S3, "secretName": "s3-writers", "secretNamespace": "broker"},
            {"endpoint": DAV, "secretName": "dav-token", "addressingStyle": "path"},
        ],
    }
    return PlatformPolicy.model_validate(base | changes)


def execution(storage_items: list[dict[str, Any]]) -> dict[str, Any]:
    req = request(
        docker(),
        compute(volumes=[volume(s["name"], f"/{s['name']}", "READWRITE") for s in storage_items]),
        storage=storage_items,
    )
    return execution_object(req, owner="alice")


def deliver(index: int, args: list[str], secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f"deliver-{index}",
        "image": STAGER,
        "imagePullPolicy": "IfNotPresent",
        "command": ["eb-stager"],
        "args": args,
    }
    if secret:
        out["envFrom"] = [{"secretRef": {"name": secret}}]
    return out | {
        "resources": RESOURCES,
        "securityContext": RESTRICTED_CONTAINER,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": f"storage-{index}", "mountPath": "/stage", "readOnly": True}],
    }


def test_the_delivery_pod_runs_one_stager_per_stageout_with_its_endpoints_credentials() -> None:
    ex = execution(
        [
            storage("results", 2, stageout={"s3": {"endpoint": S3, "bucket": "out", "prefix": "run-42/"}}),
            storage("scratch", 1),
            storage("plots", 1, stageout={"http": {"location": f"{DAV}/run-42/", "webdav": True}}),
            storage("public", 1, stageout={"http": {"location": "https://elsewhere.org/put/"}}),
        ]
    )
    now = T0 + 3600
    pod = so.build_stageout_pod(ex, policy(), now, PodSettings())
    spec = pod["spec"]
    assert pod["metadata"] == {
        "name": "eb-job-1-stage-out",
        "namespace": "science",
        "labels": {
            "app.kubernetes.io/managed-by": "eb-operator",
            "executionbroker.ivoa.net/execution-uid": "uid-1",
            "executionbroker.ivoa.net/role": "stage-out",
            "executionbroker.ivoa.net/execution": "job-1",
        },
        "ownerReferences": [EXECUTION_OWNER],
    }
    # S3: the copy of the platform's Secret (it lives in another namespace); WebDAV under a listed
    # endpoint: that endpoint's Secret, here in the session's namespace; elsewhere: anonymous
    assert spec["initContainers"] == [
        deliver(0, ["out", "s3", S3, "out", "run-42/", "/stage"], "eb-job-1-credentials-0"),
        deliver(2, ["out", "webdav", f"{DAV}/run-42/", "/stage"], "dav-token"),
    ]
    assert spec["containers"] == [deliver(3, ["out", "http", "https://elsewhere.org/put/", "/stage"])]
    assert spec["volumes"] == [
        {
            "name": f"storage-{i}",
            "persistentVolumeClaim": {"claimName": f"eb-job-1-storage-{i}", "readOnly": True},
        }
        for i in (0, 2, 3)
    ]
    assert spec["activeDeadlineSeconds"] == 60  # the reservation's end
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-a"]}]}
        ]
    }
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert so.stageout_endpoints(ex["spec"]["request"], policy()) == [
        (0, policy().data_endpoints[0]),
        (1, policy().data_endpoints[1]),
    ]
    assert session_pods(ex) == ["eb-job-1", "eb-job-1-stage-out"]


def test_a_delivery_late_in_the_reservation_still_gets_a_little_time() -> None:
    ex = execution([storage("results", 1, stageout={"s3": {"endpoint": S3, "bucket": "out"}})])
    pod = so.build_stageout_pod(ex, policy(), T0 + 3660 + 5)
    assert pod["spec"]["activeDeadlineSeconds"] == so.MIN_DEADLINE
    assert pod["spec"]["containers"][0]["args"] == ["out", "s3", S3, "out", "", "/stage"]


def test_a_reused_storage_delivers_from_the_claim_that_was_found() -> None:
    ex = execution(
        [
            {
                **storage("old", 1, stageout={"s3": {"endpoint": S3, "bucket": "out"}}),
                "href": "a" * 8 + "-0000-4000-8000-" + "0" * 12,
            }
        ]
    )
    ex["status"] = {"storage": [{"index": 0, "uuid": "u", "claim": "eb-earlier-storage-0", "reused": True}]}
    pod = so.build_stageout_pod(ex, policy(), T0 + 3600)
    assert pod["spec"]["volumes"] == [
        {
            "name": "storage-0",
            "persistentVolumeClaim": {"claimName": "eb-earlier-storage-0", "readOnly": True},
        }
    ]


def test_an_s3_destination_the_platform_does_not_list_cannot_be_built() -> None:
    ex = execution([storage("results", 1, stageout={"s3": {"endpoint": "http://other:9000", "bucket": "b"}})])
    with pytest.raises(ValueError, match="no data endpoint http://other:9000"):
        so.build_stageout_pod(ex, policy(), T0)
