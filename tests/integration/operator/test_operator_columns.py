"""What `kubectl get offersets` and `kubectl get executions` print, from the CRDs' printer columns on
the real API server: an answered set lists its offers (held in its status: no write per offer), an
offer becomes an Execution only when a client acts on it, and then shows its written phase."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.helpers import Broker, ivoa_request

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(180)


async def printed_phases(b: Broker) -> dict[str, str]:
    """NAME -> PHASE as kubectl prints them (the server's Table, from the printer columns)."""
    out = await asyncio.to_thread(b.kube.run, "get", "executions", "-n", b.namespace, "--no-headers")
    return {line.split()[0]: line.split()[1] for line in out.stdout.splitlines() if line.strip()}


async def test_kubectl_lists_offers_in_their_set_and_only_acted_on_ones_as_executions(
    broker: MakeBroker,
) -> None:
    b = await broker({"slotSeconds": 300, "maxOffers": 2}, nodes=[{"cpu": "8", "memory": "32Gi"}])
    answer = await b.ask("columns", ivoa_request())
    names = [o["name"] for o in answer["status"]["offers"]]
    assert len(names) == 2, answer["status"]
    out = await asyncio.to_thread(
        b.kube.run, "get", "offersets", "-n", b.namespace, "-o", "wide", "--no-headers"
    )
    assert out.stdout.split()[:2] == ["columns", "YES"]
    assert out.stdout.split()[2] == names[0]  # a printer column shows a list's first item
    assert await printed_phases(b) == {}, "no Execution per offer"

    await b.desire(names[0], "REJECTED")  # as a kubectl user: an Execution naming the offer and its set
    rejected = await b.reaches(names[0], "REJECTED")
    assert rejected["status"]["phase"] == "REJECTED"
    assert rejected["spec"]["reservation"] == answer["status"]["offers"][0]["reservation"]
    assert await printed_phases(b) == {names[0]: "REJECTED"}

    # a direct request has no phase until the operator writes one: never shown as OFFERED
    await b.direct("direct", ivoa_request())
    assert (await printed_phases(b))["direct"] != "OFFERED"
    await b.until("direct", lambda o: bool((o.get("status") or {}).get("phase")))
    assert (await printed_phases(b))["direct"] not in ("OFFERED", "<none>")
