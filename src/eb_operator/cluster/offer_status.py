"""Offers live in their OfferSet's status; an offer becomes an Execution when its client acts on it.

The operator answers an OfferSet with one status write that holds every offer's reservation
(``status.offers[].reservation``), and its ledger counts them from there until they expire, a
sibling is accepted or the set is deleted. An offer is written as an Execution of its own only
when a client accepts or rejects it: by the REST service, or by a kubectl user applying an
Execution named after the offer (``spec.offerSet`` and ``spec.desiredPhase``; the operator copies
the reservation in from the set when it is left out, and fails an Execution whose reservation is
not the offer's). Unaccepted offers so cost no API-server write at all: an
answer is two writes (the OfferSet and its status) instead of one per offer plus an EXPIRED or
REJECTED write for each later.

An offer's name is its IVOA session uuid. For OfferSets the REST service creates, it is the set's
own uuid with the last byte replaced by the offer's number (the set's ends in ``00``), so the
service finds an offer's set from the session uuid alone, with one GET and no index of its own.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.convert import LABEL_MANAGED_BY, LABEL_OFFERSET, MANAGER, is_uuid, label_value
from eb_operator.cluster.owners import owner_reference
from eb_operator.model.common import MessageType
from eb_operator.model.crds import ANNOTATION_INITIAL_PHASE, API_VERSION

Obj = Mapping[str, Any]

#: Offer names of OfferSets not named by the REST service derive from the set's uid (uuid5).
_OFFER_NAMESPACE = uuidlib.UUID("5d0c6c1e-3f0e-4a8e-9d36-7b0d4b1e2c11")
#: Offers a set may hold (the CRD's maxItems); offer numbers 01..ff leave 00 to the set.
MAX_OFFERS = 32


def new_offerset_name() -> str:
    """A random uuid for an OfferSet the REST service creates: its last byte is 00 (120 random bits)."""
    return str(uuidlib.uuid4())[:-2] + "00"


def _rest_named(offerset_name: str) -> bool:
    return is_uuid(offerset_name) and offerset_name.endswith("00")


def offer_name(offerset_meta: Obj, index: int) -> str:
    """The deterministic name (a UUID, and so the IVOA session uuid) of an OfferSet's i-th offer."""
    name = str(offerset_meta["name"])
    if _rest_named(name):
        return f"{name[:-2]}{index + 1:02x}"
    return str(uuidlib.uuid5(_OFFER_NAMESPACE, f"{offerset_meta['uid']}/{index}"))


def offerset_of(session_uuid: str) -> str | None:
    """The name of the REST-made OfferSet a session uuid would be an offer of, if it has that form."""
    if not is_uuid(session_uuid) or session_uuid.endswith("00"):
        return None
    if not 1 <= int(session_uuid[-2:], 16) <= MAX_OFFERS:
        return None
    return f"{session_uuid[:-2]}00"


def offer_refs(offerset: Obj) -> list[Mapping[str, Any]]:
    """The offers of an answered OfferSet (``status.offers``): name, uuid and reservation each."""
    return [r for r in (offerset.get("status") or {}).get("offers") or [] if r.get("name")]


def find_offer(offerset: Obj, name: str) -> Mapping[str, Any] | None:
    return next((r for r in offer_refs(offerset) if r["name"] == name), None)


def offer_execution(offerset: Obj, ref: Mapping[str, Any], desired: str | None = None) -> dict[str, Any]:
    """The Execution of one offer: what a client's accept or reject creates (``desired``), and how
    an offer not yet written as an Execution is shown (phase OFFERED from its reservation, or
    EXPIRED past ``reservation.expires``). Its request is the set's: it is not copied; nor is
    what a peer offered (``ref.offered``), which stays in the set: ``spec.peer`` says where."""
    meta = offerset["metadata"]
    spec: dict[str, Any] = {"offerSet": meta["name"]}
    owner = (offerset.get("spec") or {}).get("owner")
    if owner:
        spec["owner"] = owner
    groups = (offerset.get("spec") or {}).get("groups")
    if groups:
        spec["groups"] = list(groups)
    if desired is not None:
        spec["desiredPhase"] = desired
    if ref.get("peer"):  # held at a peer broker (docs/federation.md)
        spec["peer"] = dict(ref["peer"])
    else:
        spec["reservation"] = dict(ref.get("reservation") or {})  # the operator checks it is the offer's
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "Execution",
        "metadata": {
            "name": ref["name"],
            "namespace": meta.get("namespace"),
            "labels": {LABEL_MANAGED_BY: MANAGER, LABEL_OFFERSET: label_value(meta["name"])},
            # what `kubectl get executions` shows until status.phase is written (no second write)
            "annotations": {ANNOTATION_INITIAL_PHASE: "OFFERED"},
        },
        "spec": spec,
    }
    if meta.get("uid"):
        body["metadata"]["ownerReferences"] = [owner_reference(offerset, "OfferSet")]
    why = withdrawn(offerset).get(str(ref["name"]))
    if why is not None:  # taken back before anyone accepted it: shown, never written, as EXPIRED
        text = f"the offer was {why}"
        body["status"] = {"phase": "EXPIRED", "message": text, "messages": [_withdrawn(text)]}
    return body


def withdrawn(offerset: Obj) -> dict[str, str]:
    """The offers of a set taken back for a group under its share (fair sharing): name -> why."""
    items = (offerset.get("status") or {}).get("withdrawn") or []
    return {str(w.get("name")): str(w.get("message") or "") for w in items}


def _withdrawn(text: str) -> dict[str, Any]:
    return {"type": MessageType.PREEMPTED.value, "level": "WARN", "message": text}
