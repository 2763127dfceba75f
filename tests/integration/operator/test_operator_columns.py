"""What `kubectl get executions` prints, from the CRD's printer columns on the real API server: a
fresh offer (created with no status: one write per offer) shows OFFERED, and once the operator
writes status.phase, that phase."""

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


async def test_kubectl_shows_a_fresh_offer_as_offered_and_then_its_written_phase(broker: MakeBroker) -> None:
    b = await broker({"slotSeconds": 300, "maxOffers": 2}, nodes=[{"cpu": "8", "memory": "32Gi"}])
    answer = await b.ask("columns", ivoa_request())
    names = [o["name"] for o in answer["status"]["offers"]]
    assert len(names) == 2, answer["status"]
    for name in names:
        assert "phase" not in ((await b.execution(name)).get("status") or {}), "no status write per offer"
    assert await printed_phases(b) == {name: "OFFERED" for name in names}

    await b.desire(names[0], "REJECTED")
    rejected = await b.reaches(names[0], "REJECTED")
    assert rejected["status"]["phase"] == "REJECTED"
    assert (await printed_phases(b))[names[0]] == "REJECTED", "status.phase wins over the annotation"

    # a direct request has no phase until the operator writes one: never shown as OFFERED
    await b.direct("direct", ivoa_request())
    assert (await printed_phases(b))["direct"] != "OFFERED"
    await b.until("direct", lambda o: bool((o.get("status") or {}).get("phase")))
    assert (await printed_phases(b))["direct"] not in ("OFFERED", "<none>")
