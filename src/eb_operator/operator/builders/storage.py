"""Storage of a session: its volumes, mounts and PersistentVolumeClaims, and what storage an
offer gives (size and lifetime).

* A simple storage resource without a ``lifetime`` is scratch space living for the session: an
  ``emptyDir`` with ``sizeLimit`` = the offered size (the requested minimum, 1 GiB by default).
* With a ``lifetime`` it is persistent managed storage (digest §5.3 X5): a PVC of the platform's
  ``storageClassName``, created when the session starts preparing (so an offer only proposes it,
  digest §5.1 item 7), not owned by the Execution (it outlives the session), and deleted by the
  operator ``lifetime`` after the session ends (annotations below;
  :func:`eb_operator.operator.storage.claim_verdict`).
* A data resource is staged into the storage it names (a directory per data resource, see
  :func:`data_dir`), or into a volume of its own when it names none.
* Each compute volume mounts the resource its ``resource`` names, by name first, then by uuid
  (digest §9 item 28), at its ``path``; READONLY mounts are ``readOnly``. A volume without a
  mode mounts storage READWRITE and data READONLY.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eb_operator.model.times import format_duration, format_instant, parse_duration, parse_instant
from eb_operator.operator.builders.children import child_metadata

Obj = Mapping[str, Any]

LABEL_STORAGE = "executionbroker.ivoa.net/storage"
ANN_LIFETIME = "executionbroker.ivoa.net/lifetime"
ANN_DELETE_AFTER = "executionbroker.ivoa.net/delete-after"
ANN_SESSION_ENDED = "executionbroker.ivoa.net/session-ended"
ANN_POD = "executionbroker.ivoa.net/pod"  # the session's Pod, deleted with the claim (it holds it)
DEFAULT_GIB = 1
_SAFE_DIR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def child_name(execution_name: str, suffix: str) -> str:
    """``eb-<execution>-<suffix>``, shortened with a hash to stay a valid DNS label (63)."""
    name = f"eb-{execution_name}-{suffix}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"eb-{execution_name[: 63 - len(suffix) - 13].rstrip('-.')}-{digest}-{suffix}"


def claim_name(execution_name: str, index: int) -> str:
    return child_name(execution_name, f"storage-{index}")


def storage_volume(index: int) -> str:
    return f"storage-{index}"


def data_volume(index: int) -> str:
    return f"data-{index}"


# --- what the request asks, as offered -------------------------------------------------------------


def offered_gib(resource: Obj) -> int:
    """The size offered for a storage resource: its requested minimum, else 1 GiB."""
    requested = (resource.get("size") or {}).get("requested") or {}
    low = requested.get("min")
    return max(int(low), 0) if low is not None else DEFAULT_GIB


def offered_lifetime(resource: Obj, limit_seconds: int) -> int | None:
    """Seconds persistent storage outlives the session: the requested minimum (else the maximum,
    else the limit), at most the platform's limit; None for scratch storage."""
    lifetime = resource.get("lifetime")
    if lifetime is None:
        return None
    requested = lifetime.get("requested") or {}
    for key in ("min", "max"):
        if requested.get(key):
            return min(parse_duration(str(requested[key])), limit_seconds)
    return limit_seconds


def is_persistent(resource: Obj) -> bool:
    return resource.get("lifetime") is not None


def with_offered_storage(request: Obj, limit_seconds: int) -> dict[str, Any]:
    """A copy of the canonical request whose storage resources carry ``size.offered`` and, for
    persistent storage, ``lifetime.offered`` (min = max), as an offer shows them."""
    out = dict(request)
    resources = dict(out.get("resources") or {})
    storage = resources.get("storage")
    if not storage:
        return out
    offered = []
    for item in storage:
        item = dict(item)
        gib = offered_gib(item)
        item["size"] = {**(item.get("size") or {}), "offered": {"min": gib, "max": gib}}
        seconds = offered_lifetime(item, limit_seconds)
        if seconds is not None:
            text = format_duration(seconds)
            item["lifetime"] = {**(item.get("lifetime") or {}), "offered": {"min": text, "max": text}}
        offered.append(item)
    resources["storage"] = offered
    out["resources"] = resources
    return out


# --- resolving volume references ------------------------------------------------------------------


def resolve(ref: str, request: Obj) -> tuple[str, int] | None:
    """``("storage", i)`` or ``("data", j)`` for a volume's ``resource``: by name, then by uuid."""
    resources = request.get("resources") or {}
    for attr in ("name", "uuid"):
        for kind in ("storage", "data"):
            for i, item in enumerate(resources.get(kind) or []):
                if item.get(attr) == ref:
                    return kind, i
    return None


def data_dir(resource: Obj, index: int) -> str:
    """The directory a data resource is staged into inside the storage it names: its name when
    that is a plain file name, else ``data-<index>``."""
    name = str(resource.get("name") or "")
    return name if _SAFE_DIR.match(name) and name not in (".", "..") else f"data-{index}"


@dataclass(frozen=True, slots=True)
class Target:
    """Where data resource ``index`` is staged: a Pod volume and a directory inside it."""

    index: int
    volume: str
    sub_path: str  # "" for the volume's root


@dataclass(frozen=True, slots=True)
class StoragePlan:
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)


def data_target(request: Obj, index: int) -> Target:
    resources = request.get("resources") or {}
    resource = (resources.get("data") or [])[index]
    ref = resource.get("storage")
    found = resolve(str(ref), request) if ref else None
    if found is not None and found[0] == "storage":
        return Target(index, storage_volume(found[1]), data_dir(resource, index))
    return Target(index, data_volume(index), "")


# --- builders -------------------------------------------------------------------------------------


def build_claim(
    execution: Obj, index: int, resource: Obj, storage_class: str, limit_seconds: int, pod: str
) -> dict[str, Any]:
    """The PVC of persistent storage resource ``index``: not owned by the Execution (it outlives
    it); deleted at the latest its lifetime after the reservation's end, together with the session's
    Pod ``pod`` (kept after the run for its logs, it would hold the claim)."""
    meta = execution["metadata"]
    r = execution["spec"]["reservation"]
    lifetime = offered_lifetime(resource, limit_seconds) or 0
    annotations = {
        ANN_LIFETIME: format_duration(lifetime),
        ANN_DELETE_AFTER: format_instant(parse_instant(r["releaseEnd"]) + lifetime),
        ANN_POD: pod,
    }
    name = claim_name(meta["name"], index)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": child_metadata(execution, name, {LABEL_STORAGE: "persistent"}, annotations, owned=False),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": f"{offered_gib(resource)}Gi"}},
        },
    }


def _mount(volume: str, path: str, read_only: bool, sub_path: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": volume, "mountPath": path}
    if sub_path:
        out["subPath"] = sub_path
    if read_only:
        out["readOnly"] = True
    return out


def plan_storage(
    execution: Obj, request: Obj, storage_class: str | None, limit_seconds: int, pod: str = ""
) -> StoragePlan:
    """Volumes, main-container mounts, PVCs and staging targets for ``request`` (canonical
    ivoa-std, as judged: every reference resolves); ``pod``: the name of the session's Pod."""
    resources = request.get("resources") or {}
    storage = resources.get("storage") or []
    data = resources.get("data") or []
    volumes: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    for i, item in enumerate(storage):
        if is_persistent(item):
            if storage_class is None:
                raise ValueError("persistent storage needs the platform's storageClassName")
            claim = build_claim(execution, i, item, storage_class, limit_seconds, pod)
            claims.append(claim)
            volumes.append(
                {"name": storage_volume(i), "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
            )
        else:
            volumes.append({"name": storage_volume(i), "emptyDir": {"sizeLimit": f"{offered_gib(item)}Gi"}})
    targets = [data_target(request, j) for j in range(len(data))]
    volumes += [{"name": t.volume, "emptyDir": {}} for t in targets if t.volume == data_volume(t.index)]
    mounts = []
    computes = resources.get("compute") or []
    for volume in (computes[0].get("volumes") or []) if computes else []:
        found = resolve(str(volume.get("resource")), request)
        if found is None or not volume.get("path"):
            continue
        kind, i = found
        mode = volume.get("mode") or ("READWRITE" if kind == "storage" else "READONLY")
        read_only = mode == "READONLY"
        if kind == "storage":
            mounts.append(_mount(storage_volume(i), volume["path"], read_only))
        else:
            target = targets[i]
            mounts.append(_mount(target.volume, volume["path"], read_only, target.sub_path))
    return StoragePlan(volumes, mounts, claims, targets)
