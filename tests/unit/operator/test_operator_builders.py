"""The objects the operator writes, pinned as exact dicts."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from tests.support.wire import EXECUTION_OWNER

from eb_operator.model.platform import GpuFlavour, PlatformPolicy, Toleration
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator.builders import pod as pod_builder
from eb_operator.operator.builders import staging
from eb_operator.operator.builders import status as status_builder

pytestmark = pytest.mark.unit

DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
T0 = parse_instant("2030-01-01T10:00:00Z")


def execution(reservation: dict[str, Any], name: str = "job-1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "science", "uid": "uid-1"},
        "spec": {"reservation": reservation},
    }


def reservation(**over: Any) -> dict[str, Any]:
    base = {
        "node": "node-a",
        "prepareStart": format_instant(T0 - 30),
        "start": format_instant(T0),
        "duration": "PT1H",
        "releaseEnd": format_instant(T0 + 3600 + 60),
        "cores": 2,
        "memoryGiB": 4,
        "storageGiB": 0,
        "gpus": 0,
    }
    return base | over


DOCKER_EXE = {
    "type": DOCKER,
    "image": {"locations": ["eb-workload:latest"]},
    "entrypoint": "sh",
    "command": ["-c", "echo hi"],
    "environment": {"B": "2", "A": "1"},
    "network": {"ports": [{"internal": {"port": 8888}, "protocol": "HTTP"}]},
}


SECURE_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
}


def test_a_docker_pod_is_pinned_to_its_node_with_requests_equal_to_limits() -> None:
    pod = pod_builder.build_pod(execution(reservation()), DOCKER_EXE, PlatformPolicy(), now=T0 - 30)
    limits = {"cpu": "2", "memory": "4Gi"}
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "eb-job-1",
            "namespace": "science",
            "labels": {
                "app.kubernetes.io/managed-by": "eb-operator",
                "executionbroker.ivoa.net/execution-uid": "uid-1",
                "executionbroker.ivoa.net/execution": "job-1",
            },
            "ownerReferences": [EXECUTION_OWNER],
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "activeDeadlineSeconds": 3600 + 30,
            "terminationGracePeriodSeconds": 10,
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchFields": [
                                    {"key": "metadata.name", "operator": "In", "values": ["node-a"]}
                                ]
                            }
                        ]
                    }
                }
            },
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": "eb-workload:latest",
                    "command": ["sh"],
                    "args": ["-c", "echo hi"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 8888, "protocol": "TCP"}],
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {"requests": limits, "limits": limits},
                    "securityContext": SECURE_CONTAINER,
                }
            ],
            # created at prepareStart: the workload waits for the offered start (digest §7 item 55)
            "initContainers": [
                {
                    "name": "wait-start",
                    "image": "eb-stager:0.1.0",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", staging.WAIT_SOURCE],
                    "args": [str(T0), "2030-01-01T10:00:00Z"],
                    "resources": {"requests": limits, "limits": limits},
                    "securityContext": SECURE_CONTAINER,
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
        },
    }


def test_a_pod_made_at_or_after_the_offered_start_does_not_wait() -> None:
    for now in (T0, T0 + 5):
        pod = pod_builder.build_pod(execution(reservation()), DOCKER_EXE, PlatformPolicy(), now=now)
        assert "initContainers" not in pod["spec"]


def test_the_wait_uses_the_platforms_stager_image_and_comes_after_staging() -> None:
    policy = PlatformPolicy.model_validate({"images": {"httpStager": "python:3.12-slim"}})
    ex = execution(reservation())
    ex["spec"]["request"] = {
        "resources": {
            "data": [
                {
                    "type": "https://www.purl.org/ivoa.net/EB/schema/types/resources/data/simple-data-resource-1.0",
                    "name": "d",
                    "location": "http://files.example.org/d.fits",
                }
            ]
        }
    }
    pod = pod_builder.build_pod(ex, DOCKER_EXE, policy, now=T0 - 30)
    inits = pod["spec"]["initContainers"]
    assert [(c["name"], c["image"]) for c in inits] == [
        ("stage-0", "python:3.12-slim"),
        ("wait-start", "python:3.12-slim"),
    ]


def test_the_wait_script_ends_at_the_start_and_not_before() -> None:
    start = int(time.time()) + 2
    done = subprocess.run(
        [sys.executable, "-c", staging.WAIT_SOURCE, str(start), "then"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert time.time() >= start
    assert done.stdout == "the offered start then was reached\n"
    past = subprocess.run(
        [sys.executable, "-c", staging.WAIT_SOURCE, str(start - 3600), "long ago"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert past.stdout == "the offered start long ago was reached\n"


def test_a_gpu_pod_limits_the_extended_resource_and_selects_the_product_and_tolerates_the_taint() -> None:
    policy = PlatformPolicy(
        toleration=Toleration(key="dedicated", value="broker"),
        gpu_flavours=[GpuFlavour(name="ad104", product="nvidia-ad104")],
    )
    r = reservation(
        gpus=1,
        gpuResource="nvidia.com/gpu",
        storageGiB=10,
        nodeSelector={"nvidia.com/gpu.product": "nvidia-ad104"},
    )
    exe = {"type": DOCKER, "image": {"locations": ["eb-workload:latest"]}}
    pod = pod_builder.build_pod(execution(r), exe, policy, now=T0 + 600)
    spec = pod["spec"]
    limits = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi", "nvidia.com/gpu": "1"}
    assert spec["containers"][0] == {
        "name": "main",
        "image": "eb-workload:latest",
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": limits, "limits": limits},
        "securityContext": SECURE_CONTAINER,
    }
    assert spec["nodeSelector"] == {"nvidia.com/gpu.product": "nvidia-ad104"}
    assert spec["tolerations"] == [
        {"key": "dedicated", "effect": "NoSchedule", "operator": "Equal", "value": "broker"}
    ]
    assert spec["activeDeadlineSeconds"] == 3600 - 600  # never past start + duration


def test_a_long_execution_name_gets_no_name_label_but_a_valid_pod_name() -> None:
    name = "x" * 100
    pod = pod_builder.build_pod(execution(reservation(), name=name), DOCKER_EXE, PlatformPolicy(), now=T0)
    assert "executionbroker.ivoa.net/execution" not in pod["metadata"]["labels"]
    assert pod["metadata"]["name"] == f"eb-{name}"


def test_an_executable_without_image_is_refused() -> None:
    with pytest.raises(ValueError, match="no image"):
        pod_builder.build_pod(execution(reservation()), {"type": DOCKER}, PlatformPolicy(), now=T0)


def test_an_offerset_status_with_offers_says_yes_holds_their_reservations_and_one_expiry() -> None:
    offers = [
        {"name": "a", "uuid": "ua", "reservation": reservation()},
        {"name": "b", "uuid": "ub", "reservation": reservation(node="node-b")},
    ]
    status = status_builder.offerset_status("u", offers, T0 + 300, T0, [], 1, {"name": "r"})
    assert status == {
        "uuid": "u",
        "result": "YES",
        "offers": offers,
        "created": "2030-01-01T10:00:00Z",
        "messages": [],
        "expires": "2030-01-01T10:05:00Z",
        "request": {"name": "r"},
        "observedGeneration": 1,
    }


def test_an_offerset_status_without_offers_says_no_with_the_reasons() -> None:
    why = status_builder.message_item("INFO", "urn:no-capacity", "no node has 64 cores", T0)
    status = status_builder.offerset_status("u", [], None, T0, [why], None, {"name": "r"})
    assert status == {
        "uuid": "u",
        "result": "NO",
        "offers": [],
        "created": "2030-01-01T10:00:00Z",
        "messages": [
            {
                "type": "urn:no-capacity",
                "time": "2030-01-01T10:00:00Z",
                "level": "INFO",
                "message": "no node has 64 cores",
            }
        ],
    }


def test_conditions_keep_their_transition_time_while_the_status_is_unchanged() -> None:
    old = [status_builder.condition("Reserved", True, "Offered", "held", T0, 1)]
    same = status_builder.condition("Reserved", True, "Accepted", "held", T0 + 60, 2)
    flipped = status_builder.condition("Reserved", False, "Completed", "done", T0 + 120, 2)
    assert status_builder.merge_conditions(old, [same])[0]["lastTransitionTime"] == format_instant(T0)
    assert status_builder.merge_conditions(old, [flipped])[0]["lastTransitionTime"] == format_instant(
        T0 + 120
    )


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        (DOCKER, pod_builder.DOCKER),
        (
            "https://www.purl.org/ivoa.net/EB/schema/v1.0/types/executable/docker-container-1.0",
            pod_builder.DOCKER,
        ),
        (
            "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0",
            pod_builder.JUPYTER,
        ),
        ("urn:something-else", None),
    ],
    ids=["ivoa-std docker", "C105 docker", "jupyter", "unknown"],
)
def test_executable_kinds_are_recognised_in_every_dialect(uri: str, kind: str | None) -> None:
    assert pod_builder.executable_kind(uri) == kind
