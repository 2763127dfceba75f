"""Where a session's children live, and the metadata that ties each to its Execution.

The operator decides the namespace once (:func:`eb_operator.model.tenancy.session_namespace`: the
owner's namespace for a REST session, the Execution's own for a kubectl user's) and records it in
``status.childNamespace`` when the session prepares; every builder reads it back from there with
:func:`child_namespace`, so a Pod, its Service, Secrets, routes and volume claims always land
together.

A child beside its Execution is owned by it (``ownerReferences``: Kubernetes deletes it with the
Execution). A child in another namespace cannot be (Kubernetes ignores, and then garbage-collects,
an owner in another namespace): it carries the Execution's uid, namespace and name in labels and an
annotation instead, and the operator deletes it level-based (docs/operator.md, "Sharing a
platform").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION_UID, LABEL_MANAGED_BY, MANAGER, label_value
from eb_operator.cluster.owners import execution_owner

Obj = Mapping[str, Any]

LABEL_EXECUTION_NAMESPACE = "executionbroker.ivoa.net/execution-namespace"
ANN_EXECUTION = "executionbroker.ivoa.net/execution"  # "<namespace>/<name>" of the Execution


def child_namespace(execution: Obj) -> str:
    """The namespace of ``execution``'s children: ``status.childNamespace``, else its own."""
    placed = (execution.get("status") or {}).get("childNamespace")
    return str(placed or execution["metadata"]["namespace"])


def placed(execution: Obj, namespace: str) -> dict[str, Any]:
    """``execution`` with its children's namespace recorded (what the builders then read)."""
    return {**execution, "status": {**(execution.get("status") or {}), "childNamespace": namespace}}


def child_labels(execution: Obj) -> dict[str, str]:
    """The labels every child carries: made by the broker, for this Execution (by uid), and, when
    it lives elsewhere, the Execution's namespace."""
    meta = execution["metadata"]
    labels = {LABEL_MANAGED_BY: MANAGER, LABEL_EXECUTION_UID: str(meta["uid"])}
    if child_namespace(execution) != meta["namespace"]:
        labels[LABEL_EXECUTION_NAMESPACE] = label_value(str(meta["namespace"]))
    return labels


def child_metadata(
    execution: Obj,
    name: str,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    *,
    owned: bool = True,
) -> dict[str, Any]:
    """The metadata of one child named ``name``: in the children's namespace, labelled as the
    Execution's, owned by it when beside it (``owned=False``: never, for what outlives it)."""
    meta = execution["metadata"]
    namespace = child_namespace(execution)
    out: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {**child_labels(execution), **(labels or {})},
    }
    notes = dict(annotations or {})
    if namespace != meta["namespace"]:
        notes[ANN_EXECUTION] = f"{meta['namespace']}/{meta['name']}"
    elif owned:
        out["ownerReferences"] = [execution_owner(execution)]
    if notes:
        out["annotations"] = notes
    return out
