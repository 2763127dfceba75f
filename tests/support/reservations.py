"""Which reservations hold capacity on which node, and over what time, read from Executions and
OfferSets as plain JSON: the ground the double-booking checks of the REST tests
(tests/integration/api/helpers.py) and of benchmarks/load.py stand on. Independent of the
operator and the engine on purpose, so a bug there cannot hide itself."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from eb_operator.model.times import parse_datetime

HOLDING = {"OFFERED", "ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING", "RELEASING"}

#: A reservation's [prepareStart, releaseEnd) and the reservation itself.
Span = tuple[datetime, datetime, Mapping[str, Any]]


#: Phases an offer reaches only by being accepted (the rest: None, PROPOSED, OFFERED, REJECTED, EXPIRED).
ACCEPTED_ON = {
    "ACCEPTED",
    "WAITING",
    "PREPARING",
    "READY",
    "RUNNING",
    "RELEASING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
}


def with_offers(
    executions: Iterable[Mapping[str, Any]],
    offersets: Iterable[Mapping[str, Any]],
    *,
    released: bool = False,
) -> list[Mapping[str, Any]]:
    """The Executions, and as an Execution each offer held only in its OfferSet's status: every
    offer of an answered set not written as an Execution (a client's accept or reject writes it),
    unless an offer of the same set was accepted (``released``: those too, for a check over time
    that ends their hold at the acceptance). It reads OFFERED (from its reservation and set), is
    created when its set was answered, and holds until its reservation's ``expires``.

    Read ``offersets`` *before* ``executions`` when the broker is busy: two LISTs are two
    moments. Read the other way round, an accept made between them is missing from the
    Executions while the sets read later already hold new offers made from the capacity that
    accept released (its siblings'), and the siblings, still in their set's status with nothing
    accepted to hide them, are counted as well: an overbooking that never happened (common
    under load, with many clients accepting). In this order an accept seen in the Executions
    hides its siblings, and a set answered after the first read adds nothing."""
    out = list(executions)
    written = {(e["metadata"]["namespace"], e["metadata"]["name"]) for e in out}
    accepted = {
        (e["metadata"]["namespace"], (e.get("spec") or {}).get("offerSet"))
        for e in out
        if (e.get("status") or {}).get("phase") in ACCEPTED_ON
    }
    for o in offersets:
        meta = o["metadata"]
        if (meta["namespace"], meta["name"]) in accepted and not released:
            continue
        for ref in (o.get("status") or {}).get("offers") or []:
            if (meta["namespace"], ref["name"]) in written or not ref.get("reservation"):
                continue
            out.append(
                {
                    "metadata": {
                        "name": ref["name"],
                        "namespace": meta["namespace"],
                        "uid": "",
                        # decided when the set was answered, which may be well after its creation
                        "creationTimestamp": (o.get("status") or {}).get("created")
                        or meta.get("creationTimestamp"),
                    },
                    "spec": {"offerSet": meta["name"], "reservation": ref["reservation"]},
                    "status": {},
                }
            )
    return out


def holding_spans(executions: Iterable[Mapping[str, Any]]) -> dict[str, list[Span]]:
    """Per node, the reservations holding capacity now: in a holding phase, and an offer only
    until it expires (whatever its phase says yet)."""
    per_node: dict[str, list[Span]] = defaultdict(list)
    now = datetime.now(UTC)
    for e in executions:
        res = (e.get("spec") or {}).get("reservation")
        phase = (e.get("status") or {}).get("phase") or "OFFERED"
        if not res or phase not in HOLDING:
            continue
        if phase == "OFFERED" and res.get("expires") and parse_datetime(res["expires"]) <= now:
            continue
        per_node[res["node"]].append(
            (parse_datetime(res["prepareStart"]), parse_datetime(res["releaseEnd"]), res)
        )
    return per_node


def live_at_starts(spans: list[Span]) -> Iterator[tuple[datetime, list[Mapping[str, Any]]]]:
    """At each reservation's start, the reservations live then: a sum over intervals is highest at
    some interval's start, so these instants are the only ones to check."""
    for t, _, _ in spans:
        yield t, [r for s, e, r in spans if s <= t < e]
