"""Many clients at once: offers never exceed what the nodes have."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.capacity import holds, overbooked
from tests.integration.operator.helpers import Broker, ivoa_request

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)


async def test_fifty_concurrent_offersets_on_a_small_platform_never_exceed_capacity(
    broker: MakeBroker,
) -> None:
    b = await broker(
        {"slotSeconds": 300, "horizonSeconds": 4 * 3600, "offerTtlSeconds": 600, "maxOffers": 4},
        nodes=[{"cpu": "8", "memory": "32Gi"}, {"cpu": "8", "memory": "32Gi"}],
    )
    rng = random.Random(5)
    names = [f"c-{i}" for i in range(50)]
    asks = [
        ivoa_request(cores=rng.randint(1, 4), memory=rng.randint(1, 8), duration=f"PT{rng.choice((1, 2))}H")
        for _ in names
    ]
    await asyncio.gather(*(b.offerset(n, r) for n, r in zip(names, asks, strict=True)))
    answers = await asyncio.gather(*(b.answered(n, timeout=120) for n in names))

    results = [a["status"]["result"] for a in answers]
    assert "YES" in results
    assert "NO" in results  # the platform filled up: the later ones were told so
    held = await b.held()
    nodes = [b.kube.get("node", n) for n in b.nodes]
    assert overbooked(held, nodes) == []
    offered = {o["name"] for a in answers for o in a["status"].get("offers") or []}
    assert offered == {e["metadata"]["name"] for e in held if holds(e)}  # every offer is reported
    assert await b.executions() == []  # and none is an Execution before a client acts on it

    # Accept one offer of each YES set, concurrently: still never more than the nodes have.
    firsts = [a["status"]["offers"][0]["name"] for a in answers if a["status"]["offers"]]
    await asyncio.gather(*(b.desire(n, "ACCEPTED") for n in firsts))
    await asyncio.gather(
        *(b.until(n, lambda o: (o.get("status") or {}).get("phase") != "OFFERED") for n in firsts)
    )
    assert overbooked(await b.held(), nodes) == []
