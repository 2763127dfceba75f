"""The Pod that delivers a session's results once its run has ended (RELEASING): pure builders.

For each storage resource with a ``stageout`` (:mod:`eb_operator.model.stageout`), one container of
the stager image (``images.s3Stager``) runs ``eb-stager out s3|http|webdav ... /stage`` with that
storage's claim mounted read-only at ``/stage``, and the credentials of the platform's endpoint as
environment from a Secret (never from the request): for S3 the listed endpoint's, for HTTP(S) the
listed endpoint the location falls under (``PlatformPolicy.endpoint_under``; anonymous when none).
The deliveries run one after the other (init containers, the last one the Pod's container), each
verified by size and CRC32 by the stager; a failure stops the Pod with the stager's one line in
its termination message, which the operator quotes in the FAILED session. On success each writes
its summary there (``staged out N files, B bytes in S s (R MB/s)``), which the session reports on
its storage item.

The Pod runs on the reserved node within the reservation's cores and memory (the workload's Pod
has ended), non-root like every session Pod, and is stopped at the reservation's end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION
from eb_operator.model.platform import DataEndpoint, PlatformPolicy
from eb_operator.model.times import parse_instant
from eb_operator.operator.builders.children import child_metadata
from eb_operator.operator.builders.pod import PodSettings, pod_spec, request_of
from eb_operator.operator.builders.staging import RESTRICTED, STAGE_MOUNT, STAGER_COMMAND, credential_secret
from eb_operator.operator.builders.storage import claim_of, stageout_pod_name, storage_volume

Obj = Mapping[str, Any]

#: The label that tells a session's delivery Pod from its workload Pod (both carry its uid).
LABEL_ROLE = "executionbroker.ivoa.net/role"
ROLE = "stage-out"
#: Seconds the delivery is given at least, even when the reservation has less left.
MIN_DEADLINE = 30


def deliveries(request: Obj) -> list[tuple[int, Obj]]:
    """(index, storage resource) of every storage resource of ``request`` with a ``stageout``."""
    storage = (request.get("resources") or {}).get("storage") or []
    return [(i, item) for i, item in enumerate(storage) if item.get("stageout")]


def delivers(execution: Obj) -> bool:
    """The session has results to deliver when its run ends."""
    return bool(deliveries(request_of(execution)))


@dataclass(frozen=True, slots=True)
class Delivery:
    index: int
    args: list[str]
    endpoint: DataEndpoint | None  # whose Secret holds the credentials, if any
    at: int | None  # its position in the platform's dataEndpoints


def delivery(index: int, resource: Obj, policy: PlatformPolicy) -> Delivery:
    """The stager's arguments for storage resource ``index``'s ``stageout``, and its endpoint."""
    out = resource["stageout"]
    if out.get("s3"):
        s3 = out["s3"]
        endpoint = str(s3.get("endpoint") or "")
        found = policy.data_endpoint(endpoint)
        if found is None:
            raise ValueError(f"resources/storage/{index}: the platform has no data endpoint {endpoint}")
        style = [] if found.addressing_style == "path" else ["--addressing-style", found.addressing_style]
        args = [
            "out",
            "s3",
            *style,
            endpoint,
            str(s3.get("bucket") or ""),
            str(s3.get("prefix") or ""),
            STAGE_MOUNT,
        ]
        return Delivery(index, args, found, policy.data_endpoints.index(found))
    http = out.get("http") or {}
    location = str(http.get("location") or "")
    if not location:
        raise ValueError(f"resources/storage/{index}: the stageout names no destination")
    under = policy.endpoint_under(location)
    kind = "webdav" if http.get("webdav") else "http"
    at = policy.data_endpoints.index(under) if under is not None else None
    return Delivery(index, ["out", kind, location, STAGE_MOUNT], under, at)


def stageout_endpoints(request: Obj, policy: PlatformPolicy) -> list[tuple[int, DataEndpoint]]:
    """(position in dataEndpoints, endpoint) whose Secrets the deliveries read."""
    found: dict[int, DataEndpoint] = {}
    for i, item in deliveries(request):
        d = delivery(i, item, policy)
        if d.endpoint is not None and d.at is not None and d.endpoint.secret_name is not None:
            found[d.at] = d.endpoint
    return sorted(found.items())


def build_stageout_pod(
    execution: Obj, policy: PlatformPolicy, now: int, settings: PodSettings | None = None
) -> dict[str, Any]:
    """The delivery Pod of an Execution whose run has ended (see the module doc)."""
    settings = settings or PodSettings()
    meta = execution["metadata"]
    r = execution["spec"]["reservation"]
    request = request_of(execution)
    wanted = deliveries(request)
    if not wanted:
        raise ValueError("the session has no results to deliver")
    limits = {"cpu": str(r["cores"]), "memory": f"{r['memoryGiB']}Gi"}
    containers: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    for i, item in wanted:
        claim = claim_of(execution, i, item)
        if claim is None:
            raise ValueError(f"resources/storage/{i}: no claim holds the results")
        d = delivery(i, item, policy)
        container: dict[str, Any] = {
            "name": f"deliver-{i}",
            "image": policy.images.s3_stager,
            "imagePullPolicy": settings.image_pull_policy,
            "command": list(STAGER_COMMAND),
            "args": d.args,
        }
        secret = credential_secret(d.endpoint, d.at, execution) if d.endpoint and d.at is not None else None
        if secret is not None:
            container["envFrom"] = [{"secretRef": {"name": secret}}]
        container |= {
            "resources": {"requests": dict(limits), "limits": dict(limits)},
            "securityContext": dict(RESTRICTED),
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [{"name": storage_volume(i), "mountPath": STAGE_MOUNT, "readOnly": True}],
        }
        containers.append(container)
        volumes.append(
            {"name": storage_volume(i), "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
    deadline = max(MIN_DEADLINE, parse_instant(r["releaseEnd"]) - now)
    labels = {LABEL_ROLE: ROLE}
    if len(meta["name"]) <= 63:
        labels[LABEL_EXECUTION] = meta["name"]
    spec = pod_spec(r, policy, settings, deadline, containers[-1:], containers[:-1], volumes)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": child_metadata(execution, stageout_pod_name(meta["name"]), labels),
        "spec": spec,
    }


# --- what a delivery reported ---------------------------------------------------------------------

_SUMMARY = re.compile(r"staged out (\d+) files, (\d+) bytes")


@dataclass(frozen=True, slots=True)
class Delivered:
    index: int
    ok: bool
    message: str
    files: int | None = None
    bytes: int | None = None


def delivered(statuses: Sequence[Obj]) -> list[Delivered]:
    """What each ``deliver-<i>`` container of a delivery Pod reported, once it ended (its
    termination message: the stager's summary, or why it failed)."""
    out = []
    for c in statuses:
        name = str(c.get("name") or "")
        if not name.startswith("deliver-"):
            continue
        term = (c.get("state") or {}).get("terminated")
        if not term:
            continue
        text = " ".join(str(term.get("message") or term.get("reason") or "").split())
        found = _SUMMARY.search(text)
        out.append(
            Delivered(
                index=int(name.removeprefix("deliver-")),
                ok=term.get("exitCode") == 0,
                message=text,
                files=int(found.group(1)) if found else None,
                bytes=int(found.group(2)) if found else None,
            )
        )
    return sorted(out, key=lambda d: d.index)
