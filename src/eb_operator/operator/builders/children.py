"""Where a session's children (Services, route objects, Secrets) live and how each is marked as
the Execution's: one function each, so that every builder, and the operator's deletions, agree.

Today a child lives in its Execution's namespace and carries an owner reference to it (Kubernetes
deletes it with the Execution); the operator also deletes the ones a finished session no longer
needs by name (``eb_operator.operator.children.release``), and finds any child by the Execution's
uid label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.convert import LABEL_EXECUTION_UID, LABEL_MANAGED_BY, MANAGER
from eb_operator.cluster.owners import execution_owner

Obj = Mapping[str, Any]


def child_namespace(execution: Obj) -> str:
    """The namespace of a session's children."""
    return str(execution["metadata"]["namespace"])


def child_labels(execution: Obj) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGER, LABEL_EXECUTION_UID: str(execution["metadata"]["uid"])}


def child_metadata(execution: Obj, name: str) -> dict[str, Any]:
    """A child of the Execution: in :func:`child_namespace`, labelled as its own, deleted with it
    (an owner reference only reaches an owner in the same namespace)."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": child_namespace(execution),
        "labels": child_labels(execution),
    }
    if meta["namespace"] == execution["metadata"]["namespace"]:
        meta["ownerReferences"] = [execution_owner(execution)]
    return meta
