"""Storage, data staging and notebooks: the objects the operator builds, pinned as exact dicts."""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.wire import (
    EXECUTION_OWNER,
    RESTRICTED_CONTAINER,
    compute,
    docker,
    execution_object,
    notebook,
    request,
    rucio_data,
    s3_data,
    simple_data,
    storage,
    volume,
)

from eb_operator.model import RequestError, judge_request, parse_offerset_request
from eb_operator.model.platform import DataEndpoint, Images, PlatformPolicy
from eb_operator.model.reuse import storage_uuid
from eb_operator.model.times import format_instant, parse_instant
from eb_operator.operator import storage as claims
from eb_operator.operator.builders import notebook as nb
from eb_operator.operator.builders import pod as pod_builder
from eb_operator.operator.builders import staging
from eb_operator.operator.builders import storage as st
from eb_operator.operator.lifecycle import Outcome, observe_pod, pod_outcome
from eb_operator.operator.requests import interpret

pytestmark = pytest.mark.unit

T0 = parse_instant("2030-01-01T10:00:00Z")
S3 = "http://s3.example.org:7070"
STAGER = ["eb-stager"]
STAGER_IMAGE = "eb-stager:0.1.0"
LIMITS = {"cpu": "2", "memory": "4Gi"}
INIT_RESOURCES = {"requests": LIMITS, "limits": LIMITS}
MANAGED = {"app.kubernetes.io/managed-by": "eb-operator", "executionbroker.ivoa.net/execution-uid": "uid-1"}


def execution(req: dict[str, Any], namespace: str = "science") -> dict[str, Any]:
    ex = execution_object(req, namespace=namespace)
    ex["spec"]["reservation"] |= {"storageGiB": 0, "gpus": 0}
    return ex


def policy(**changes: Any) -> PlatformPolicy:
    base: dict[str, Any] = {
        "dataEndpoints": [{"endpoint": S3, "secretName": "s3-creds", "secretNamespace": "broker"}]
    }
    return PlatformPolicy.model_validate(base | changes)


def stage(index: int, args: list[str], volume: str, **extra: Any) -> dict[str, Any]:
    out = {
        "name": f"stage-{index}",
        "image": STAGER_IMAGE,
        "imagePullPolicy": "Never",
        "command": STAGER,
        "args": args,
        **extra,
        "resources": INIT_RESOURCES,
        "securityContext": RESTRICTED_CONTAINER,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": volume, "mountPath": "/stage"}],
    }
    return out


# --- storage and mounts --------------------------------------------------------------------------


def test_scratch_storage_is_a_size_limited_empty_dir_mounted_read_write_and_data_read_only() -> None:
    req = request(
        docker(),
        compute(volumes=[volume("scratch", "/scratch", "READWRITE"), volume("cat", "/data", "READONLY")]),
        storage=[storage("scratch", 5)],
        data=[simple_data("cat", "http://files.example.org/catalogue.csv", storage="scratch")],
    )
    plan = st.plan_storage(execution(req), req, None, 3600)
    assert plan == st.StoragePlan(
        volumes=[{"name": "storage-0", "emptyDir": {"sizeLimit": "5Gi"}}],
        mounts=[
            {"name": "storage-0", "mountPath": "/scratch"},
            {"name": "storage-0", "mountPath": "/data", "subPath": "cat", "readOnly": True},
        ],
        claims=[],
        targets=[st.Target(0, "storage-0", "cat")],
    )


def test_data_without_storage_gets_a_volume_of_its_own_and_volumes_resolve_by_uuid_too() -> None:
    req = request(
        docker(),
        compute(volumes=[{"resource": "uuid-7", "path": "/in"}, {"resource": "tmp", "path": "/tmp/x"}]),
        storage=[storage("tmp")],
        data=[simple_data("../odd name", uuid="uuid-7")],
    )
    plan = st.plan_storage(execution(req), req, None, 3600)
    assert plan.volumes == [
        {"name": "storage-0", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "data-0", "emptyDir": {}},
    ]
    assert plan.mounts == [
        {"name": "data-0", "mountPath": "/in", "readOnly": True},  # data defaults to READONLY
        {"name": "storage-0", "mountPath": "/tmp/x"},  # storage to READWRITE
    ]
    assert plan.targets == [st.Target(0, "data-0", "")]


def test_persistent_storage_is_a_claim_deleted_its_lifetime_after_the_reservation_at_the_latest() -> None:
    req = request(
        docker(),
        compute(volumes=[volume("results", "/results", "READWRITE")]),
        storage=[storage("results", 2, lifetime={"requested": {"min": "PT10M"}})],
    )
    plan = st.plan_storage(execution(req), req, "local-path", 86400, "eb-job-1")
    assert plan.claims == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": "eb-job-1-storage-0",
                "namespace": "science",
                "labels": {
                    **MANAGED,
                    "executionbroker.ivoa.net/storage": "persistent",
                    "executionbroker.ivoa.net/storage-uuid": storage_uuid("uid-1", 0),
                },
                "annotations": {
                    "executionbroker.ivoa.net/lifetime": "PT10M",
                    "executionbroker.ivoa.net/delete-after": format_instant(T0 + 3660 + 600),
                    "executionbroker.ivoa.net/pod": "eb-job-1",
                    "executionbroker.ivoa.net/owner": "",
                    "executionbroker.ivoa.net/holds": (
                        f'{{"uid-1":["{format_instant(T0 - 30)}","{format_instant(T0 + 3660)}"]}}'
                    ),
                },
            },
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "local-path",
                "resources": {"requests": {"storage": "2Gi"}},
            },
        }
    ]
    assert plan.volumes == [
        {"name": "storage-0", "persistentVolumeClaim": {"claimName": "eb-job-1-storage-0"}}
    ]
    with pytest.raises(ValueError, match="storageClassName"):
        st.plan_storage(execution(req), req, None, 86400)


def test_offers_show_the_offered_size_and_lifetime_capped_by_the_platform() -> None:
    req = request(
        docker(),
        storage=[storage("a", 3), storage("b", lifetime={"requested": {"min": "P30D"}})],
    )
    offered = st.with_offered_storage(req, limit_seconds=7 * 86400)
    assert offered["resources"]["storage"] == [
        {**storage("a", 3), "size": {"requested": {"min": 3}, "offered": {"min": 3, "max": 3}}},
        {
            **storage("b"),
            "size": {"offered": {"min": 1, "max": 1}},
            "lifetime": {"requested": {"min": "P30D"}, "offered": {"min": "P7D", "max": "P7D"}},
        },
    ]
    assert req["resources"]["storage"][0] == storage("a", 3)  # the input is not changed


@pytest.mark.parametrize(
    ("annotations", "ended", "now", "verdict"),
    [
        (
            {"executionbroker.ivoa.net/delete-after": format_instant(T0)},
            False,
            T0,
            claims.Verdict(delete=True),
        ),
        ({"executionbroker.ivoa.net/delete-after": format_instant(T0 + 99)}, False, T0, claims.Verdict()),
        (
            {
                "executionbroker.ivoa.net/delete-after": format_instant(T0 + 999),
                "executionbroker.ivoa.net/lifetime": "PT1M",
            },
            True,
            T0,
            claims.Verdict(
                annotations={
                    "executionbroker.ivoa.net/session-ended": format_instant(T0),
                    "executionbroker.ivoa.net/delete-after": format_instant(T0 + 60),
                }
            ),
        ),
        (
            {
                "executionbroker.ivoa.net/delete-after": format_instant(T0 + 999),
                "executionbroker.ivoa.net/lifetime": "PT0S",
            },
            True,
            T0,
            claims.Verdict(delete=True),
        ),
        ({}, True, T0, claims.Verdict()),
    ],
    ids=[
        "past its deadline: deleted",
        "session running, deadline ahead: kept",
        "session ended: deadline moved to now + lifetime, once",
        "session ended with no lifetime: deleted",
        "not ours to judge (no annotations): kept",
    ],
)
def test_a_persistent_claim_is_deleted_its_lifetime_after_the_session_ends(
    annotations: dict[str, str], ended: bool, now: int, verdict: claims.Verdict
) -> None:
    claim = {"metadata": {"name": "c", "annotations": annotations}}
    assert claims.claim_verdict(claim, ended, now) == verdict


# --- staging -------------------------------------------------------------------------------------


def test_http_s3_and_ivoa_data_are_staged_by_init_containers_with_credentials_from_the_platform() -> None:
    ivoa = {
        "type": "https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/data/ivoa-data-resource.yaml",
        "name": "obs",
        "ivoa": {"obscore": {"access_url": "https://archive.example.org/obs.fits"}},
    }
    req = request(
        docker(),
        compute(volumes=[volume("work", "/work", "READWRITE")]),
        storage=[storage("work", 1)],
        data=[
            simple_data("cat", "http://files.example.org/cat.csv", storage="work"),
            s3_data("survey", endpoint=S3, bucket="sky", object="tiles/", storage="work"),
            ivoa,
        ],
    )
    parts = pod_builder.pod_parts(execution(req), req["executable"], policy(), LIMITS, "Never")
    assert parts.init_containers == [
        stage(0, ["http", "http://files.example.org/cat.csv", "/stage/cat"], "storage-0"),
        stage(
            1,
            ["s3", S3, "sky", "tiles/", "/stage/survey"],
            "storage-0",
            envFrom=[{"secretRef": {"name": "eb-job-1-credentials-0"}}],
        ),
        stage(2, ["http", "https://archive.example.org/obs.fits", "/stage"], "data-2"),
    ]
    assert staging.credential_copies(execution(req), req, policy()) == [
        (
            DataEndpoint(endpoint=S3, secret_name="s3-creds", secret_namespace="broker"),
            "eb-job-1-credentials-0",
        )
    ]


def test_an_endpoint_with_virtual_host_addressing_tells_the_stager() -> None:
    req = request(docker(), data=[s3_data("survey", endpoint=S3, bucket="sky", object="a.fits")])
    aws = policy(dataEndpoints=[{"endpoint": S3, "addressingStyle": "virtual"}])
    [container] = pod_builder.pod_parts(
        execution(req), req["executable"], aws, LIMITS, "Never"
    ).init_containers
    assert container["args"] == ["s3", "--addressing-style", "virtual", S3, "sky", "a.fits", "/stage"]
    assert "envFrom" not in container


def test_an_endpoint_secret_in_the_session_namespace_is_used_as_it_is() -> None:
    req = request(docker(), data=[s3_data("survey", endpoint=S3 + "/", bucket="sky")])
    same = policy(dataEndpoints=[{"endpoint": S3, "secretName": "s3-creds"}])
    [container] = pod_builder.pod_parts(
        execution(req), req["executable"], same, LIMITS, "Never"
    ).init_containers
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert container["args"] == ["s3", S3 + "/", "sky", "", "/stage"]
    assert staging.credential_copies(execution(req), req, same) == []


def test_a_copied_endpoint_secret_is_owned_by_the_execution() -> None:
    source = {"type": "Opaque", "data": {"AWS_ACCESS_KEY_ID": "YQ=="}, "metadata": {"name": "s3-creds"}}
    copy = staging.build_credential_copy(execution({}), "eb-job-1-credentials-0", source)
    assert copy == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "eb-job-1-credentials-0",
            "namespace": "science",
            "labels": {
                "app.kubernetes.io/managed-by": "eb-operator",
                "executionbroker.ivoa.net/execution-uid": "uid-1",
            },
            "ownerReferences": [EXECUTION_OWNER],
        },
        "type": "Opaque",
        "data": {"AWS_ACCESS_KEY_ID": "YQ=="},
    }


def test_rucio_data_is_downloaded_by_the_stagers_rucio_client_in_its_configured_image() -> None:
    req = request(docker(), data=[rucio_data("lsst", domain="scope1")])
    pol = policy(images={"rucioStager": "eb-stager:0.1.0"})
    [container] = pod_builder.pod_parts(
        execution(req), req["executable"], pol, LIMITS, "Never"
    ).init_containers
    assert container == {
        "name": "stage-0",
        "image": "eb-stager:0.1.0",
        "imagePullPolicy": "Never",
        "command": STAGER,
        "args": ["rucio", "https://rucio.example.org", "scope1:obj", "/stage"],
        "resources": INIT_RESOURCES,
        "securityContext": RESTRICTED_CONTAINER,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "data-0", "mountPath": "/stage"}],
    }


# --- notebooks -----------------------------------------------------------------------------------


def test_a_notebook_pod_runs_jupyter_server_with_its_token_from_a_secret_and_the_notebook_staged() -> None:
    req = request(notebook("http://files.example.org/nb/analysis.ipynb"), compute(2, 4))
    settings = pod_builder.PodSettings(image_pull_policy="Never")
    pod = pod_builder.build_pod(execution(req), req["executable"], policy(), now=T0 - 30, settings=settings)
    [main] = pod["spec"]["containers"]
    assert pod["metadata"]["labels"]["executionbroker.ivoa.net/interactive"] == "true"
    assert pod["spec"]["volumes"] == [{"name": "notebook-work", "emptyDir": {}}]
    assert pod["spec"]["initContainers"] == [
        {
            "name": "stage-notebook",
            "image": STAGER_IMAGE,
            "imagePullPolicy": "Never",
            "command": STAGER,
            "args": ["http", "http://files.example.org/nb/analysis.ipynb", "/stage"],
            "resources": INIT_RESOURCES,
            "securityContext": RESTRICTED_CONTAINER,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [{"name": "notebook-work", "mountPath": "/stage"}],
        }
    ]
    assert main == {
        "name": "main",
        "image": "eb-notebook:latest",
        "command": ["jupyter-server"],
        "args": [
            "--ip=0.0.0.0",
            "--port=8888",
            "--no-browser",
            "--ServerApp.root_dir=/home/eb/work",
            "--ServerApp.allow_remote_access=True",
        ],
        "workingDir": "/home/eb/work",
        "env": [
            {
                "name": "JUPYTER_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "eb-job-1-notebook", "key": "token"}},
            },
            {"name": "EB_NOTEBOOK_URL", "value": "http://files.example.org/nb/analysis.ipynb"},
            {"name": "EB_BASE_PATH", "value": "/"},
        ],
        "ports": [{"name": "http", "containerPort": 8888, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/api", "port": 8888},
            "periodSeconds": 1,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "imagePullPolicy": "Never",
        "resources": {"requests": LIMITS, "limits": LIMITS},
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "notebook-work", "mountPath": "/home/eb/work"}],
    }


def test_a_notebook_has_a_token_secret_and_a_service_owned_by_its_execution() -> None:
    ex = execution({})
    assert nb.build_token_secret(ex, "t0k") == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "eb-job-1-notebook",
            "namespace": "science",
            "labels": MANAGED,
            "ownerReferences": [EXECUTION_OWNER],
        },
        "type": "Opaque",
        "stringData": {"token": "t0k"},
    }
    assert nb.build_service(ex) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "eb-job-1-notebook",
            "namespace": "science",
            "labels": MANAGED,
            "ownerReferences": [EXECUTION_OWNER],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"executionbroker.ivoa.net/execution-uid": "uid-1"},
            "ports": [{"name": "http", "port": 8888, "targetPort": 8888, "protocol": "TCP"}],
        },
    }


def test_the_in_cluster_access_url_carries_the_token_under_the_servers_base_path() -> None:
    url = nb.access_url("10.215.0.9", "a b")
    assert url == "http://10.215.0.9:8888/?token=a%20b"
    assert nb.access_url("fd00::1", "t") == "http://[fd00::1]:8888/?token=t"
    assert (
        nb.access_url("10.1.0.2", "t", "/session/notebook/u/")
        == "http://10.1.0.2:8888/session/notebook/u/?token=t"
    )


# --- the phase machine's view of staging and notebooks ----------------------------------------------


def pod(labels: dict[str, str] | None = None, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "labels": labels or {}}, "spec": {"nodeName": "n"}, "status": status}


RUNNING = {"containerStatuses": [{"state": {"running": {"startedAt": "2030-01-01T10:00:00Z"}}}]}


def test_a_failed_staging_container_fails_the_session_with_its_message() -> None:
    view = observe_pod(
        pod(
            phase="Failed",
            initContainerStatuses=[
                {"name": "stage-0", "state": {"terminated": {"exitCode": 0}}},
                {
                    "name": "stage-1",
                    "state": {
                        "terminated": {
                            "exitCode": 1,
                            "reason": "Error",
                            "message": "staging failed: GET http://h/x: HTTP 404 Not Found\n",
                        }
                    },
                },
            ],
            containerStatuses=[{"state": {"waiting": {"reason": "PodInitializing"}}}],
        )
    )
    assert pod_outcome(view) == (
        Outcome.FAILED,
        "data staging failed: stage-1 exited with code 1: staging failed: GET http://h/x: HTTP 404 Not Found",
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (
            {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True"},
                ],
            },
            Outcome.PENDING,
        ),
        ({"phase": "Running", **RUNNING}, Outcome.PENDING),
        ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], **RUNNING}, Outcome.READY),
        ({"phase": "Failed", "reason": "DeadlineExceeded"}, Outcome.SUCCEEDED),
    ],
    ids=[
        "initialised, server not started",
        "server not answering yet",
        "server answers: READY",
        "duration elapsed: a normal end",
    ],
)
def test_a_notebook_is_ready_when_its_server_answers(status: dict[str, Any], outcome: Outcome) -> None:
    view = observe_pod(pod({nb.LABEL_INTERACTIVE: "true"}, **status))
    assert pod_outcome(view)[0] is outcome


# --- the judge and the platform --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "changes", "reasons"),
    [
        (
            request(docker(), storage=[storage("r", lifetime={"requested": {"min": "P1D"}})]),
            {"storageClassName": "local"},
            [],
        ),
        (
            request(docker(), storage=[storage("r", lifetime={"requested": {"min": "P30D"}})]),
            {"storageClassName": "local"},
            [("urn:ivoa:eb:resource-limit", "resources/storage/0/lifetime/requested/min")],
        ),
        (
            request(docker(), storage=[storage("r", lifecycle="unmanaged")]),
            {},
            [("urn:ivoa:eb:not-supported", "resources/storage/0/lifecycle")],
        ),
        (
            request(docker(), data=[s3_data("d", endpoint="http://elsewhere:9000")]),
            {},
            [("urn:ivoa:eb:unreachable-endpoint", "resources/data/0/endpoint")],
        ),
        (
            request(docker(), data=[rucio_data("d")]),
            {},
            [("urn:ivoa:eb:not-supported", "resources/data/0/type")],
        ),
    ],
    ids=[
        "persistent storage within the lifetime limit: acceptable",
        "a lifetime over the limit: NO",
        "unmanaged storage: NO",
        "an S3 endpoint the platform is not configured for: NO",
        "Rucio without a Rucio stager image: NO",
    ],
)
def test_the_judge_answers_no_to_storage_and_data_the_platform_cannot_serve(
    doc: dict[str, Any], changes: dict[str, Any], reasons: list[tuple[str, str]]
) -> None:
    req, _ = parse_offerset_request(doc)
    found = [(m.type, m.path) for m in judge_request(req, policy(**changes)) if m.level == "ERROR"]
    assert found == reasons


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("lifetime", id="a storage lifetime"),
        pytest.param("duration", id="the run time"),
    ],
)
@pytest.mark.parametrize("value", ["-P1D", "-PT1H", "P1H", "soon"])
def test_a_negative_or_garbage_duration_is_refused_when_read_and_answered_no_naming_the_field(
    where: str, value: str
) -> None:
    """On a platform with a storage class a lifetime reaches the operator's storage code, which has
    no meaning for a negative one: the reader refuses it (the REST service's 400) and a set made
    with kubectl is answered NO, both naming the field, so no such value gets that far."""
    if where == "lifetime":
        doc = request(docker(), storage=[storage("r", lifetime={"requested": {"min": value}})])
        path = "resources/storage/0/lifetime/requested/min"
    else:
        doc = request(docker(), duration=value)
        path = "schedule/requested/duration"
    with pytest.raises(RequestError) as refused:
        parse_offerset_request(doc)
    assert refused.value.path == path
    interp = interpret(doc, policy(storageClassName="local"), T0)
    assert interp.demand is None
    [message] = interp.messages
    assert (message["level"], message["type"]) == ("ERROR", "urn:ivoa:eb:input-syntax")
    assert message["values"]["path"] == path
    assert message["message"].startswith(f"Invalid value at {path}: ")


def test_singularity_without_a_runner_image_is_a_no_that_says_so() -> None:
    req, _ = parse_offerset_request(
        request({"type": staging_types()["singularity"], "location": "http://x/a.sif"})
    )
    [message] = judge_request(req, PlatformPolicy(images=Images()))
    assert message.message == "executable/type: this platform does not run Singularity containers"


def staging_types() -> dict[str, str]:
    return {
        "singularity": "https://www.purl.org/ivoa.net/EB/schema/types/executables/singularity-container-1.0"
    }
