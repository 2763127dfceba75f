"""Pure conversions between Kubernetes objects (plain dicts) and the engine's types.

No I/O here: Kubernetes quantities, a node's allocatable resources, a Pod's requests, an
Execution's reservation and phase. Times and durations are read and written by
:mod:`eb_operator.model.times`.
"""

from __future__ import annotations

import hashlib
import re
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from eb_operator.engine.types import GIB, Offer, Phase, Reservation, Resources
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.times import format_duration, format_instant, parse_instant

Obj = Mapping[str, Any]

# --- quantities ---------------------------------------------------------------------------------

_SUFFIX: dict[str, int | Decimal] = {
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
    "Ei": 1024**6,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 1000,
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "E": 1000**6,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E)?$")


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("500m", "2", "1Gi", "1e3") as a Decimal in base units."""
    if isinstance(text, int | float):
        return Decimal(str(text))
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, suffix = match.groups()
    factor = _SUFFIX[suffix] if suffix else 1
    return Decimal(number) * (factor if isinstance(factor, Decimal) else Decimal(factor))


def cpu_millis(text: str | int | float) -> int:
    return int((parse_quantity(text) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def whole(text: str | int | float) -> int:
    return int(parse_quantity(text).to_integral_value(rounding="ROUND_CEILING"))


def resources_from(values: Mapping[str, Any], extended: Iterable[str] | None = None) -> Resources:
    """cpu, memory, ephemeral-storage and extended resources (``gpus``) from a resource map.

    ``extended=None`` takes every extended resource (a name with a ``/``, e.g. nvidia.com/gpu).
    """
    names = [k for k in values if "/" in k] if extended is None else [r for r in extended if r in values]
    gpus = {r: n for r in names if (n := whole(values[r])) > 0}
    return Resources(
        cpu_millis=cpu_millis(values.get("cpu", 0)),
        memory_bytes=whole(values.get("memory", 0)),
        ephemeral_bytes=whole(values.get("ephemeral-storage", 0)),
        gpus=gpus,
    )


def add(a: Resources, b: Resources, sign: int = 1) -> Resources:
    gpus = dict(a.gpus)
    for name, n in b.gpus.items():
        gpus[name] = gpus.get(name, 0) + sign * n
    return Resources(
        cpu_millis=a.cpu_millis + sign * b.cpu_millis,
        memory_bytes=a.memory_bytes + sign * b.memory_bytes,
        ephemeral_bytes=a.ephemeral_bytes + sign * b.ephemeral_bytes,
        gpus={k: v for k, v in gpus.items() if v},
    )


def clamp_free(allocatable: Resources, used: Resources) -> Resources:
    """What is left of ``allocatable`` after ``used``, never negative."""
    return Resources(
        cpu_millis=max(0, allocatable.cpu_millis - used.cpu_millis),
        memory_bytes=max(0, allocatable.memory_bytes - used.memory_bytes),
        ephemeral_bytes=max(0, allocatable.ephemeral_bytes - used.ephemeral_bytes),
        gpus={k: max(0, n - used.gpus.get(k, 0)) for k, n in allocatable.gpus.items()},
    )


# --- nodes and pods -----------------------------------------------------------------------------


def node_ready(node: Obj) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def node_allocatable(node: Obj, extended: Iterable[str] | None = None) -> Resources:
    status = node.get("status", {})
    return resources_from(status.get("allocatable") or status.get("capacity") or {}, extended)


def node_usable(node: Obj, selector: Mapping[str, str], toleration_key: str | None) -> bool:
    """Ready, schedulable, carrying every selector label, and with no NoSchedule/NoExecute taint but ours."""
    labels = node.get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    spec = node.get("spec", {})
    if spec.get("unschedulable"):
        return False
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and taint.get("key") != toleration_key:
            return False
    return node_ready(node)


def pod_done(pod: Obj) -> bool:
    """The Pod runs nothing any more: a final phase, or (``restartPolicy: Never``) every container
    terminated. The kubelet writes the final phase a moment after the last container exits; in
    between, counting its requests as held would keep the node of a session that has just ended
    (its Execution deleted at once, as a user does after ``kubectl wait``) full, and the next
    request would get NO."""
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return True
    spec = pod.get("spec") or {}
    if spec.get("restartPolicy") != "Never":
        return False
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = spec.get("containers") or []
    return (
        bool(containers)
        and len(statuses) >= len(containers)
        and all("terminated" in (s.get("state") or {}) for s in statuses)
    )


def pod_scheduled(pod: Obj) -> bool:
    """The scheduler counts the Pod's requests on its node: bound to one and not in a final phase
    (a Pod being deleted still counts until it is gone; the scheduler's informer drops Pods in a
    final phase). Stricter than ``not pod_done``: a Pod whose containers have all ended counts
    until the kubelet writes its final phase."""
    return bool((pod.get("spec") or {}).get("nodeName")) and (pod.get("status") or {}).get("phase") not in (
        "Succeeded",
        "Failed",
    )


def pod_requests(pod: Obj, extended: Iterable[str] | None = None) -> Resources:
    """What the scheduler counts for a Pod: max(sum of containers, largest init container) + overhead.

    A container with limits but no requests requests its limits (the API server defaults it so).
    """
    ext = None if extended is None else tuple(extended)
    spec = pod.get("spec", {})

    def one(c: Obj) -> Resources:
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return resources_from(merged, ext)

    total = Resources()
    for c in spec.get("containers") or []:
        total = add(total, one(c))
    for c in spec.get("initContainers") or []:
        r = one(c)
        total = Resources(
            cpu_millis=max(total.cpu_millis, r.cpu_millis),
            memory_bytes=max(total.memory_bytes, r.memory_bytes),
            ephemeral_bytes=max(total.ephemeral_bytes, r.ephemeral_bytes),
            gpus={k: max(total.gpus.get(k, 0), r.gpus.get(k, 0)) for k in {*total.gpus, *r.gpus}},
        )
    if spec.get("overhead"):
        total = add(total, resources_from(spec["overhead"], ext))
    return total


# --- broker objects -----------------------------------------------------------------------------

LABEL_EXECUTION = "executionbroker.ivoa.net/execution"
LABEL_EXECUTION_UID = "executionbroker.ivoa.net/execution-uid"
LABEL_OFFERSET = "executionbroker.ivoa.net/offerset"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
#: Annotation on an OfferSet or Execution the REST service made: a JSON list of the paths (as the
#: client wrote them) of requirement-like fields the request held that no model defines. The CRD's
#: structural schema prunes such fields, so without it the operator would never see them and would
#: offer as if they were not there (digest §9 item 26: answer NO naming the path).
UNKNOWN_REQUIREMENTS_ANNOTATION = "executionbroker.ivoa.net/unknown-requirements"
#: Annotation on an OfferSet the REST service made for a request another broker forwarded: the
#: ``EB-Via`` list it came with (``eb_operator.model.federation``), which the operator extends when
#: it forwards the request to its own peers.
VIA_ANNOTATION = "executionbroker.ivoa.net/via"
MANAGER = "eb-operator"


def label_value(text: str) -> str:
    """A valid label value: the text itself when it fits, else a prefix and a hash."""
    if len(text) <= 63:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{text[:52].rstrip('-_.')}-{digest}"


def is_uuid(text: str) -> bool:
    try:
        return str(uuidlib.UUID(text)) == text.lower()
    except ValueError:
        return False


def object_uuid(obj: Obj) -> str:
    """The IVOA uuid of a broker object: ``status.uuid`` once the operator wrote it, else its name
    when that is a UUID (REST-made objects and offers), else its Kubernetes uid (objects named by
    kubectl users). The operator writes ``status.uuid`` from the same rule, so all three agree."""
    written = (obj.get("status") or {}).get("uuid")
    if written:
        return str(written)
    meta = obj.get("metadata", {})
    name = str(meta.get("name", ""))
    return name if is_uuid(name) else str(meta.get("uid", ""))


def recorded_phase(obj: Obj) -> Phase | None:
    """The phase an Execution records: ``status.phase``, and OFFERED for an offer whose status is
    not written yet (``spec.offerSet``, and ``spec.reservation`` or ``spec.peer``: how an accepted
    or rejected offer is first written, and how an offer held only in its set's status is shown). Without
    lazy expiry: that is ``eb_operator.api.views.shown_phase``."""
    phase = (obj.get("status") or {}).get("phase")
    if phase:
        return Phase(phase)
    spec = obj.get("spec") or {}
    if (spec.get("reservation") or spec.get("peer")) and spec.get("offerSet"):
        return Phase.OFFERED
    return None


def reservation_spec(
    offer: Offer, expires: int | None, node_selector: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The spec.reservation of an Execution holding ``offer``."""
    out: dict[str, Any] = {
        "node": offer.node,
        "prepareStart": format_instant(offer.prepare_start),
        "start": format_instant(offer.start),
        "duration": format_duration(offer.duration),
        "releaseEnd": format_instant(offer.release_end),
    }
    if expires is not None:
        out["expires"] = format_instant(expires)
    out |= {"cores": offer.cores, "memoryGiB": offer.memory_gib, "storageGiB": offer.storage_gib}
    out["gpus"] = offer.gpus
    if offer.gpu_resource and offer.gpus:
        out["gpuResource"] = offer.gpu_resource
    if node_selector:
        out["nodeSelector"] = dict(node_selector)
    return out


def reservation_from_spec(
    key: str, spec: Obj, phase: Phase, group: str = "", owner: str = "", account: str = ""
) -> Reservation:
    """The engine's reservation of a ``spec.reservation``; ``owner`` and ``account`` say whom it is
    charged to (limits and shares)."""
    r = spec
    gpus = int(r.get("gpus") or 0)
    resource = r.get("gpuResource")
    return Reservation(
        key=key,
        node=str(r["node"]),
        start=parse_instant(r["prepareStart"]),
        end=parse_instant(r["releaseEnd"]),
        resources=Resources(
            cpu_millis=int(r.get("cores", 0)) * 1000,
            memory_bytes=int(r.get("memoryGiB", 0)) * GIB,
            ephemeral_bytes=int(r.get("storageGiB", 0)) * GIB,
            gpus={resource: gpus} if resource and gpus else {},
        ),
        phase=phase,
        group=group,
        owner=owner,
        account=account,
    )


def holds_capacity(phase: Phase | None) -> bool:
    return phase is not None and phase not in FINAL_PHASES and phase != Phase.PROPOSED
