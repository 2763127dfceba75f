"""Storage of a session: its volumes, mounts and PersistentVolumeClaims, and what storage an
offer gives (size and lifetime).

* A simple storage resource without a ``lifetime`` or a ``stageout`` is scratch space living for
  the session: an ``emptyDir`` with ``sizeLimit`` = the offered size (the requested minimum, 1 GiB
  by default).
* With a ``lifetime`` it is persistent managed storage (digest §5.3 X5); with a ``stageout`` its
  results go somewhere after the run. Either way it is a PVC of the platform's
  ``storageClassName``, created when the session starts preparing (so an offer only proposes it,
  digest §5.1 item 7), not owned by the Execution (it outlives the session), and deleted by the
  operator once no session holds it: ``lifetime`` after the last one ended, longer
  (``keepUndeliveredSeconds``) when results it should have delivered were not (annotations below;
  :func:`eb_operator.operator.storage.claim_verdict`).
* A storage item with an ``href`` names a claim an earlier session of the same owner made
  (:mod:`eb_operator.model.reuse`): the operator finds it (``status.storage``) and the Pod mounts it.
  The claim records which sessions may mount it when (``holds``): one at a time.
* A data resource is staged into the storage it names (a directory per data resource, see
  :func:`data_dir`), or into a volume of its own when it names none.
* Each compute volume mounts the resource its ``resource`` names, by name first, then by uuid
  (digest §9 item 28), at its ``path``; READONLY mounts are ``readOnly``. A volume without a
  mode mounts storage READWRITE and data READONLY.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster.convert import object_uuid
from eb_operator.model.reuse import named_storage, storage_uuid
from eb_operator.model.times import format_duration, format_instant, parse_duration, parse_instant
from eb_operator.operator.builders.children import child_metadata

Obj = Mapping[str, Any]

LABEL_STORAGE = "executionbroker.ivoa.net/storage"
LABEL_STORAGE_UUID = "executionbroker.ivoa.net/storage-uuid"
ANN_LIFETIME = "executionbroker.ivoa.net/lifetime"
ANN_DELETE_AFTER = "executionbroker.ivoa.net/delete-after"
ANN_SESSION_ENDED = "executionbroker.ivoa.net/session-ended"
#: The Pods that mount the claim (comma-separated), deleted with it: a finished Pod still holds it.
ANN_POD = "executionbroker.ivoa.net/pod"
#: Who may mount it again: the owner of the session that made it (the real name; "" for none).
ANN_OWNER = "executionbroker.ivoa.net/owner"
#: The sessions that may mount it, and when: JSON ``{execution uid: [prepareStart, releaseEnd]}``.
ANN_HOLDS = "executionbroker.ivoa.net/holds"
#: How long it is kept after a session that did not deliver its results (storage with a stageout).
ANN_KEEP_UNDELIVERED = "executionbroker.ivoa.net/keep-undelivered"
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


def stageout_pod_name(execution_name: str) -> str:
    """The Pod that delivers a session's results (``builders.stageout``)."""
    return child_name(execution_name, "stage-out")


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


def with_offered_storage(
    request: Obj, limit_seconds: int, found_gib: Mapping[int, int] | None = None
) -> dict[str, Any]:
    """A copy of the canonical request whose storage resources carry ``size.offered`` and, for
    persistent storage, ``lifetime.offered`` (min = max), as an offer shows them; ``found_gib``:
    the sizes of earlier sessions' storage it mounts again (index -> GiB)."""
    out = dict(request)
    resources = dict(out.get("resources") or {})
    storage = resources.get("storage")
    if not storage:
        return out
    offered = []
    for i, item in enumerate(storage):
        item = dict(item)
        gib = (found_gib or {}).get(i, offered_gib(item))
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


def holds_of(claim: Obj) -> dict[str, tuple[int, int]]:
    """The claim's holds: execution uid -> (prepareStart, releaseEnd), epoch seconds."""
    text = ((claim.get("metadata") or {}).get("annotations") or {}).get(ANN_HOLDS)
    try:
        raw = json.loads(text) if text else {}
        return {str(k): (parse_instant(v[0]), parse_instant(v[1])) for k, v in raw.items()}
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return {}


def holds_text(holds: Mapping[str, tuple[int, int]]) -> str:
    return json.dumps(
        {k: [format_instant(a), format_instant(b)] for k, (a, b) in sorted(holds.items())},
        separators=(",", ":"),
    )


def reservation_span(execution: Obj) -> tuple[int, int]:
    r = execution["spec"]["reservation"]
    return parse_instant(r["prepareStart"]), parse_instant(r["releaseEnd"])


def build_claim(
    execution: Obj,
    index: int,
    resource: Obj,
    storage_class: str,
    limit_seconds: int,
    pod: str,
    keep_undelivered: int = 0,
) -> dict[str, Any]:
    """The PVC of storage resource ``index`` (persistent, or with a stageout): not owned by the
    Execution (it outlives it); deleted at the latest its lifetime (or, when it delivers results,
    at least ``keep_undelivered``) after the reservation's end, together with the session's Pod
    ``pod`` (kept after the run for its logs, it would hold the claim)."""
    meta = execution["metadata"]
    lifetime = offered_lifetime(resource, limit_seconds) or 0
    begin, end = reservation_span(execution)
    keep = max(lifetime, keep_undelivered) if resource.get("stageout") else lifetime
    annotations = {
        ANN_LIFETIME: format_duration(lifetime),
        ANN_DELETE_AFTER: format_instant(end + keep),
        ANN_POD: pod,
        ANN_OWNER: str((execution.get("spec") or {}).get("owner") or ""),
        ANN_HOLDS: holds_text({str(meta["uid"]): (begin, end)}),
    }
    if resource.get("stageout"):
        annotations[ANN_KEEP_UNDELIVERED] = format_duration(keep)
    labels = {
        LABEL_STORAGE: "persistent",
        LABEL_STORAGE_UUID: storage_uuid(object_uuid(execution), index),
    }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": child_metadata(
            execution, claim_name(meta["name"], index), labels, annotations, owned=False
        ),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": f"{offered_gib(resource)}Gi"}},
        },
    }


def found_claims(execution: Obj) -> dict[int, str]:
    """The claims the operator found for reused storage (``status.storage``): index -> name."""
    out: dict[int, str] = {}
    for item in (execution.get("status") or {}).get("storage") or []:
        if item.get("reused") and item.get("claim"):
            out[int(item["index"])] = str(item["claim"])
    return out


def is_claimed(resource: Obj) -> bool:
    """Backed by a claim: persistent, with a stageout, or an earlier session's (``href``)."""
    return is_persistent(resource) or bool(resource.get("stageout")) or reuses(resource) is not None


def reuses(resource: Obj) -> str | None:
    """The uuid of the earlier session's storage a canonical storage item names (its ``href``)."""
    href = resource.get("href")
    return named_storage(str(href)) if href is not None else None


def reused_uuids(request: Obj | None) -> tuple[str, ...]:
    """The uuids of earlier sessions' storage a canonical request names (its items' ``href``)."""
    storage = ((request or {}).get("resources") or {}).get("storage") or []
    return tuple(u for item in storage if (u := reuses(item)))


def claim_of(execution: Obj, index: int, resource: Obj) -> str | None:
    """The claim of storage resource ``index``: found (reused), made (claimed), or none (scratch)."""
    if reuses(resource) is not None:
        return found_claims(execution).get(index)
    if is_claimed(resource):
        return claim_name(execution["metadata"]["name"], index)
    return None


def _mount(volume: str, path: str, read_only: bool, sub_path: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": volume, "mountPath": path}
    if sub_path:
        out["subPath"] = sub_path
    if read_only:
        out["readOnly"] = True
    return out


def plan_storage(
    execution: Obj,
    request: Obj,
    storage_class: str | None,
    limit_seconds: int,
    pod: str = "",
    keep_undelivered: int = 0,
) -> StoragePlan:
    """Volumes, main-container mounts, PVCs and staging targets for ``request`` (canonical
    ivoa-std, as judged: every reference resolves); ``pod``: the name of the session's Pod."""
    resources = request.get("resources") or {}
    storage = resources.get("storage") or []
    data = resources.get("data") or []
    volumes: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    reused = found_claims(execution)
    for i, item in enumerate(storage):
        named = reuses(item)
        if named is not None:
            if i not in reused:
                raise ValueError(f"resources/storage/{i}: the storage {named} it names was not found")
            volumes.append({"name": storage_volume(i), "persistentVolumeClaim": {"claimName": reused[i]}})
        elif is_claimed(item):
            if storage_class is None:
                raise ValueError(
                    "persistent storage and results to stage out need the platform's storageClassName"
                )
            claim = build_claim(execution, i, item, storage_class, limit_seconds, pod, keep_undelivered)
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
