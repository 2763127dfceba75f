"""Pure builders of the objects the operator writes: Pods, status patches.

Each takes plain values and returns a plain dict; unit tests pin them with exact dicts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION, LABEL_EXECUTION_UID, LABEL_MANAGED_BY, MANAGER
from eb_operator.cluster.owners import owner_reference
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.times import format_instant, parse_duration, parse_instant
from eb_operator.operator import workload

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


def _container_process(executable: Obj, policy: PlatformPolicy) -> dict[str, Any]:
    kind = executable_kind(str(executable.get("type", "")))
    env = dict(executable.get("environment") or {})
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
    container: dict[str, Any] = {
        "name": "main",
        **_container_process(executable, policy),
        "imagePullPolicy": settings.image_pull_policy,
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
        },
    }
    # volumes, staging init containers, notebook server (eb_operator.operator.workload)
    parts = workload.pod_parts(execution, executable, policy, limits, settings.image_pull_policy, now)
    container.update(parts.process)
    if parts.mounts:
        container["volumeMounts"] = parts.mounts
    labels = {LABEL_MANAGED_BY: MANAGER, LABEL_EXECUTION_UID: meta["uid"], **parts.labels}
    if len(meta["name"]) <= 63:
        labels[LABEL_EXECUTION] = meta["name"]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "activeDeadlineSeconds": max(1, end - now),
        "terminationGracePeriodSeconds": settings.termination_grace_seconds,
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [r["node"]]}]}
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
        "containers": [container],
    }
    if parts.init_containers:
        spec["initContainers"] = parts.init_containers
    if parts.volumes:
        spec["volumes"] = parts.volumes
    if r.get("nodeSelector"):
        spec["nodeSelector"] = dict(r["nodeSelector"])
    if policy.toleration is not None:
        t = policy.toleration
        toleration: dict[str, Any] = {"key": t.key, "effect": t.effect}
        toleration |= (
            {"operator": "Equal", "value": t.value} if t.value is not None else {"operator": "Exists"}
        )
        spec["tolerations"] = [toleration]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(execution, "Execution")],
        },
        "spec": spec,
    }


# --- status ---------------------------------------------------------------------------------------


def message_item(
    level: str, type_: str, message: str, now: int, values: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An IVOA MessageItem."""
    item: dict[str, Any] = {"type": type_, "time": format_instant(now), "level": level, "message": message}
    if values:
        item["values"] = dict(values)
    return item


def condition(
    type_: str, status: bool, reason: str, message: str, now: int, generation: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": format_instant(now),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def merge_conditions(old: Sequence[Obj] | None, new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace conditions of the same type; keep lastTransitionTime when the status did not change."""
    out = {str(c.get("type")): dict(c) for c in old or []}
    for c in new:
        prev = out.get(c["type"])
        if prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime"):
            c = {**c, "lastTransitionTime": prev["lastTransitionTime"]}
        out[c["type"]] = c
    return sorted(out.values(), key=lambda c: str(c["type"]))


def offerset_status(
    uuid: str,
    offers: Sequence[Obj],
    expires: int | None,
    created: int,
    messages: Sequence[Obj],
    generation: int | None,
    request: Obj | None = None,
) -> dict[str, Any]:
    """OfferSet.status: YES with the offers (name, uuid, reservation) and the request as offered
    (the canonical request with its offered storage: what each offer's session shows and runs),
    or NO with the reasons in messages."""
    status: dict[str, Any] = {
        "uuid": uuid,
        "result": "YES" if offers else "NO",
        "offers": [dict(o) for o in offers],
        "created": format_instant(created),
        "messages": [dict(m) for m in messages],
    }
    if offers and expires is not None:
        status["expires"] = format_instant(expires)
    if offers and request is not None:
        status["request"] = dict(request)
    if generation is not None:
        status["observedGeneration"] = generation
    return status
