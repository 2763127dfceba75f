"""The session's Pod: its main container within the reservation, pinned to the reserved node, and
what it needs beyond its main process.

:func:`pod_parts` gives, from the Execution (its reservation and the canonical request in
``spec.request``), the executable and the platform policy: the volumes, the main container's
mounts (and, for a notebook, its whole process), the init containers that stage data
(:mod:`.staging`) and the notebook (:mod:`.notebook`), extra Pod labels, and the PVCs of
persistent storage (:mod:`.storage`). :func:`build_pod` merges it into the Pod.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.times import parse_duration, parse_instant
from eb_operator.operator.builders import endpoints, notebook, staging, storage
from eb_operator.operator.builders.children import child_metadata

Obj = Mapping[str, Any]

DOCKER = "docker-container"
JUPYTER = "jupyter-notebook"
SINGULARITY = "singularity-container"


def executable_kind(type_uri: str) -> str | None:
    """docker-container, jupyter-notebook or singularity-container for any dialect's type URI."""
    for kind in (DOCKER, JUPYTER, SINGULARITY):
        if kind in type_uri:
            return kind
    return None


@dataclass(frozen=True, slots=True)
class PodSettings:
    run_as_user: int = 1000
    image_pull_policy: str = "IfNotPresent"
    termination_grace_seconds: int = 10


def pod_name(execution_name: str) -> str:
    name = f"eb-{execution_name}"
    if len(name) <= 253:
        return name
    return f"{name[:240]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def _container_process(
    executable: Obj, policy: PlatformPolicy, base_env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The main container's image, command and environment (``base_env``: the base paths of its
    routed ports, which win over the request's own variables of those names), and its ports."""
    kind = executable_kind(str(executable.get("type", "")))
    env = dict(executable.get("environment") or {}) | dict(base_env or {})
    out: dict[str, Any] = {}
    if kind == DOCKER:
        locations = (executable.get("image") or {}).get("locations") or []
        if not locations:
            raise ValueError("the executable has no image location")
        out["image"] = locations[0]
        if executable.get("entrypoint"):
            out["command"] = [executable["entrypoint"]]
        if executable.get("command"):
            out["args"] = list(executable["command"])
    elif kind == JUPYTER:
        out["image"] = policy.images.notebook
        env.setdefault("EB_NOTEBOOK_URL", str(executable.get("location", "")))
    elif kind == SINGULARITY:
        if not policy.images.apptainer:
            raise ValueError("this platform has no Apptainer image")
        out["image"] = policy.images.apptainer
        env.setdefault("EB_SIF_URL", str(executable.get("location", "")))
    else:
        raise ValueError(f"unsupported executable type {executable.get('type')!r}")
    if env:
        out["env"] = [{"name": k, "value": str(v)} for k, v in sorted(env.items())]
    ports = []
    for p in (executable.get("network") or {}).get("ports") or []:
        port = (p.get("internal") or {}).get("port")
        if port:
            proto = "UDP" if str(p.get("protocol", "TCP")).upper() == "UDP" else "TCP"
            ports.append({"containerPort": int(port), "protocol": proto})
    if ports:
        out["ports"] = ports
    return out


def pod_spec(
    reservation: Obj,
    policy: PlatformPolicy,
    settings: PodSettings,
    deadline: int,
    containers: list[dict[str, Any]],
    init_containers: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The spec every Pod of a session shares: one run, non-root, no API token, pinned to the
    reserved node (and its GPU product), tolerating the platform's taint, stopped at ``deadline``
    seconds."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": deadline,
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [reservation["node"]]}
                            ]
                        }
                    ]
                }
            }
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if volumes:
        spec["volumes"] = volumes
    if reservation.get("nodeSelector"):
        spec["nodeSelector"] = dict(reservation["nodeSelector"])
    if policy.toleration is not None:
        t = policy.toleration
        toleration: dict[str, Any] = {"key": t.key, "effect": t.effect}
        toleration |= (
            {"operator": "Equal", "value": t.value} if t.value is not None else {"operator": "Exists"}
        )
        spec["tolerations"] = [toleration]
    return spec


def build_pod(
    execution: Obj,
    executable: Obj,
    policy: PlatformPolicy,
    now: int,
    settings: PodSettings = PodSettings(),
) -> dict[str, Any]:
    """The Pod that runs an accepted Execution on its reserved node, within its reserved resources."""
    meta = execution["metadata"]
    r = execution["spec"]["reservation"]
    limits: dict[str, str] = {"cpu": str(r["cores"]), "memory": f"{r['memoryGiB']}Gi"}
    if r.get("storageGiB"):
        limits["ephemeral-storage"] = f"{r['storageGiB']}Gi"
    if r.get("gpus") and r.get("gpuResource"):
        limits[r["gpuResource"]] = str(r["gpus"])
    end = parse_instant(r["start"]) + parse_duration(r["duration"])
    reach = endpoints.plan(execution, executable, policy)
    base_env = endpoints.base_path_env(reach.endpoints) if not is_notebook(executable) else None
    container: dict[str, Any] = {
        "name": "main",
        **_container_process(executable, policy, base_env),
        "imagePullPolicy": settings.image_pull_policy,
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
    }
    # volumes, staging init containers, notebook server
    parts = pod_parts(execution, executable, policy, limits, settings.image_pull_policy, now, reach)
    container.update(parts.process)
    if parts.mounts:
        container["volumeMounts"] = parts.mounts
    labels = dict(parts.labels)
    if len(meta["name"]) <= 63:
        labels[LABEL_EXECUTION] = meta["name"]
    spec = pod_spec(r, policy, settings, max(1, end - now), [container], parts.init_containers, parts.volumes)
    metadata = child_metadata(execution, pod_name(meta["name"]), labels)
    if reach.endpoints:  # what a person connects to: read back from the Pod (lifecycle.observe_pod)
        metadata.setdefault("annotations", {})[endpoints.ANN_ENDPOINTS] = endpoints.encode(reach)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# --- what the Pod needs beyond its main process --------------------------------------------------


@dataclass(frozen=True, slots=True)
class PodParts:
    process: dict[str, Any] = field(default_factory=dict)  # main-container fields that replace the default
    mounts: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    interactive: bool = False


def is_notebook(executable: Obj) -> bool:
    return JUPYTER in str(executable.get("type", ""))


def request_of(execution: Obj) -> Obj:
    return (execution.get("spec") or {}).get("request") or {}


def session_pods(execution: Obj) -> list[str]:
    """The Pods of a session that mount its volumes: its workload's, and its delivery's when its
    results are staged out."""
    name = execution["metadata"]["name"]
    storage_items = (request_of(execution).get("resources") or {}).get("storage") or []
    delivers = any(item.get("stageout") for item in storage_items)
    return [pod_name(name), *([storage.stageout_pod_name(name)] if delivers else [])]


def storage_plan(execution: Obj, policy: PlatformPolicy) -> storage.StoragePlan:
    """The session's volumes, mounts, claims and staging targets under ``policy``."""
    return storage.plan_storage(
        execution,
        request_of(execution),
        policy.storage_class_name,
        policy.limits.max_storage_lifetime_seconds,
        ",".join(session_pods(execution)),
        policy.keep_undelivered_seconds,
    )


def _start(execution: Obj) -> int | None:
    text = ((execution.get("spec") or {}).get("reservation") or {}).get("start")
    return parse_instant(str(text)) if text else None


def pod_parts(
    execution: Obj,
    executable: Obj,
    policy: PlatformPolicy,
    limits: Mapping[str, str],
    pull_policy: str,
    now: int | None = None,
    reach: endpoints.Plan | None = None,
) -> PodParts:
    """See the module doc. ``limits``: the main container's; init containers get its cpu and
    memory (so the Pod keeps the Guaranteed QoS class and the reservation's size). ``now``
    before the reservation's start: a batch Pod's last init container waits until that start
    (a notebook server starts as soon as it can: READY, usable, by the start)."""
    request = request_of(execution)
    plan = storage_plan(execution, policy)
    init_resources = {k: v for k, v in limits.items() if k in ("cpu", "memory")}
    resources = {"requests": dict(init_resources), "limits": dict(init_resources)}
    inits = staging.build_stage_containers(execution, request, plan.targets, policy, resources, pull_policy)
    volumes = list(plan.volumes)
    mounts = list(plan.mounts)
    if not is_notebook(executable):
        start = _start(execution)
        if now is not None and start is not None and now < start:
            inits.append(
                staging.wait_container(
                    policy.images.http_stager,
                    start,
                    str(execution["spec"]["reservation"]["start"]),
                    resources=resources,
                    pull_policy=pull_policy,
                )
            )
        return PodParts(mounts=mounts, volumes=volumes, init_containers=inits, claims=plan.claims)
    fetch = notebook.fetch_container(executable, policy, resources, pull_policy)
    reach = reach or endpoints.plan(execution, executable, policy)
    base_path = reach.endpoints[0].base_path if reach.endpoints else "/"
    return PodParts(
        process=notebook.server_process(executable, policy, execution["metadata"]["name"], base_path),
        mounts=[notebook.work_mount(), *mounts],
        volumes=[notebook.work_volume(), *volumes],
        init_containers=[*inits, *([fetch] if fetch else [])],
        labels={notebook.LABEL_INTERACTIVE: "true"},
        claims=plan.claims,
        interactive=True,
    )
