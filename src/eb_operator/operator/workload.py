"""What a session's Pod needs beyond its main process, and the objects to create before it.

:func:`pod_parts` is pure: from the Execution (its reservation and the canonical request in
``spec.request``), the executable and the platform policy it gives the volumes, the main
container's mounts (and, for a notebook, its whole process), the init containers that stage data
(:mod:`.staging`) and the notebook (:mod:`.notebook`), extra Pod labels, and the PVCs of
persistent storage (:mod:`.storage`). ``builders.build_pod`` merges it into the Pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.times import parse_instant
from eb_operator.operator import notebook, staging, storage

Obj = Mapping[str, Any]

JUPYTER = "jupyter-notebook"


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


def storage_plan(execution: Obj, policy: PlatformPolicy) -> storage.StoragePlan:
    """The session's volumes, mounts, claims and staging targets under ``policy``."""
    from eb_operator.operator.builders import pod_name  # builders imports this module

    return storage.plan_storage(
        execution,
        request_of(execution),
        policy.storage_class_name,
        policy.limits.max_storage_lifetime_seconds,
        pod_name(execution["metadata"]["name"]),
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
    return PodParts(
        process=notebook.server_process(executable, policy, execution["metadata"]["name"]),
        mounts=[notebook.work_mount(), *mounts],
        volumes=[notebook.work_volume(), *volumes],
        init_containers=[*inits, *([fetch] if fetch else [])],
        labels={notebook.LABEL_INTERACTIVE: "true"},
        claims=plan.claims,
        interactive=True,
    )
