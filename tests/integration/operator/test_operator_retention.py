"""Retention against the real API server: done OfferSets and sessions are deleted after their time
to live, a session's Pod with it (its ownerReference; the controller-manager's garbage collector
deletes it), and a set stays as long as one of its offers is a session."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from tests.integration.operator.helpers import FAST, REAL_NODE_PLATFORM, Broker, ivoa_request, phase
from tests.support.kube import async_wait_for

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, NotFound

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)
TTL = 4
SHORT = {"retention": {"ttlSecondsAfterFinished": TTL, "offerSetTtlSeconds": TTL}, "offerTtlSeconds": 5}


async def _gone(b: Broker, plural: str, name: str, timeout: float) -> None:  # noqa: ASYNC109
    async def deleted() -> bool:
        try:
            await b.cluster.get(plural, b.namespace, name)
        except NotFound:
            return True
        return False

    await async_wait_for(deleted, timeout, f"{plural} {name} to be deleted by retention")


async def test_a_set_whose_offers_lapsed_is_deleted_after_its_ttl(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST, **SHORT})
    answer = await b.ask("lapsed", ivoa_request())
    assert answer["status"]["result"] == "YES"
    no = await b.ask("impossible", ivoa_request(cores=10_000))
    assert no["status"]["result"] == "NO"
    await b.lapsed(answer)
    await _gone(b, OFFERSETS, "lapsed", TTL + 30)
    await _gone(b, OFFERSETS, "impossible", 30)
    assert b.runner is not None
    registry = b.runner.operator.ctx.metrics.registry
    assert registry.get_sample_value("eb_operator_retention_deleted_total", {"kind": OFFERSETS}) == 2


async def test_a_finished_session_goes_with_its_pod_and_then_its_set(broker: MakeBroker) -> None:
    """The set of an accepted offer is kept while the session exists (the session runs the set's
    request); the session and its kept Pod go TTL after it COMPLETED, then the set."""
    retention = {"ttlSecondsAfterFinished": 20, "offerSetTtlSeconds": 0}
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "offerTtlSeconds": 5, "retention": retention})
    answer = await b.ask("job", ivoa_request(("sh", "-c", "echo kept for its logs")))
    offer = answer["status"]["offers"][0]["name"]
    await b.desire(offer, "ACCEPTED")
    done = await b.settles(offer)
    assert phase(done) == "COMPLETED"
    pod = await b.pod(offer)
    assert pod is not None, "the finished Pod is kept (its logs) until retention"
    await b.lapsed(answer)
    assert await b.written(offer)
    await b.cluster.get(OFFERSETS, b.namespace, "job")  # still there: one of its offers is a session
    await _gone(b, EXECUTIONS, offer, 60)
    await _gone(b, OFFERSETS, "job", 60)

    async def pod_gone() -> bool:
        return await b.pod(offer) is None

    await async_wait_for(pod_gone, 60, "the session's Pod to go with it (garbage collector)")


async def test_a_session_of_its_own_ttl_goes_before_the_platforms(broker: MakeBroker) -> None:
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "retention": {"ttlSecondsAfterFinished": 3600}})
    await b.direct("mine", ivoa_request(("sh", "-c", "exit 0")))
    await b.direct("default", ivoa_request(("sh", "-c", "exit 0")))
    await b.cluster.patch(EXECUTIONS, b.namespace, "mine", {"spec": {"ttlSecondsAfterFinished": 2}})
    for name in ("mine", "default"):
        assert phase(await b.settles(name)) == "COMPLETED"
    await _gone(b, EXECUTIONS, "mine", 45)
    assert await b.written("default"), "the platform's hour has not passed"
