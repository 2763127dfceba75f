"""Owner references: what the operator creates for an OfferSet or an Execution (Executions, Pods,
Secrets, Services) names it as its controller, so Kubernetes deletes it with its owner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eb_operator.model.crds import API_VERSION

Obj = Mapping[str, Any]


def owner_reference(obj: Obj, kind: str, api_version: str = API_VERSION) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }


def execution_owner(execution: Obj) -> dict[str, Any]:
    """The Execution as the owner of a Secret or Service of its session, at the apiVersion it was
    read with."""
    return owner_reference(execution, "Execution", str(execution.get("apiVersion", API_VERSION)))
