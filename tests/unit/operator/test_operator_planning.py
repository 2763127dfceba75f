"""A decision's search: once (the NO reason comes with it), inline when short, in a worker
thread when long, with the same answer either way."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from tests.support.builders import MIN, H, at, demand, node, policy, tiled

from eb_operator.cluster.crs import Cluster
from eb_operator.engine import Ledger, NodeTable, explain_no_offers, find_offers
from eb_operator.engine.types import NodeCapacity, Reservation
from eb_operator.operator.core import Operator, OperatorConfig
from eb_operator.operator.planning import plan
from eb_operator.operator.requests import Interpretation

pytestmark = pytest.mark.unit

NOW = at("10:00")
DAY = (NOW, NOW + 24 * H)
POLICY = policy(slot=MIN)


def operator_with(nodes: list[NodeCapacity], held: list[Reservation], inline_seconds: float) -> Operator:
    """An operator (no API server: a decision writes nothing) whose state holds the platform;
    a search longer than ``inline_seconds`` goes to a thread (a negative one: at once)."""
    config = OperatorConfig(clock=lambda: NOW, decide_inline_seconds=inline_seconds)
    op = Operator(cast(Cluster, None), config)
    op.ctx.policy = POLICY
    for n in nodes:
        allocatable = {"cpu": f"{n.free.cpu_millis}m", "memory": str(n.free.memory_bytes)}
        allocatable["ephemeral-storage"] = str(n.free.ephemeral_bytes)
        op.state.on_node(
            {
                "metadata": {"name": n.name, "labels": dict(n.labels), "resourceVersion": "1"},
                "spec": {},
                "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
    op.state.ledger.load(held)
    return op


async def decide_beside_another_task(op: Operator) -> tuple[Any, bool]:
    """The plan, and whether a task that was ready when the search began ran before it ended."""
    ran = asyncio.Event()

    async def other() -> None:
        ran.set()

    task = asyncio.create_task(other())
    table, book = op.ctx.capacity(NOW)
    want = demand(cores=2, hours=2, between=DAY)
    found = await plan(op.ctx, want, table, book, NOW)
    other_ran = ran.is_set()
    await task
    return found, other_ran


def test_a_long_search_runs_in_a_thread_and_the_loop_serves_others_meanwhile() -> None:
    nodes, held = tiled(100, NOW)
    # a deadline already passed: the search stops at its first look at the clock (64 visits)
    op = operator_with(nodes, held, inline_seconds=-1.0)
    found, other_ran = asyncio.run(decide_beside_another_task(op))
    assert other_ran, "the event loop ran another task while the search was in its thread"
    assert op.ctx.timings["decide_in_thread"][0] == 1
    want = demand(cores=2, hours=2, between=DAY)
    table, book = NodeTable(nodes), Ledger(held).snapshot()
    assert found.offers == ()
    assert found.reason == explain_no_offers(want, POLICY, table, book, NOW)  # the NO of before


def test_a_short_search_runs_inline() -> None:
    op = operator_with([node("n1", cores=16)], [], inline_seconds=5.0)
    found, other_ran = asyncio.run(decide_beside_another_task(op))
    assert found.offers
    assert not other_ran, "nothing else ran: the search did not leave the loop"
    assert "decide_in_thread" not in op.ctx.timings


@pytest.mark.parametrize("inline_seconds", [5.0, -1.0], ids=["inline", "in a thread"])
def test_the_decision_for_an_offerset_is_one_search_with_the_reason_of_two(inline_seconds: float) -> None:
    nodes, held = tiled(100, NOW)
    op = operator_with(nodes, held, inline_seconds)
    want = demand(cores=2, hours=2, between=DAY)
    obj = {"metadata": {"name": "set", "namespace": "ns", "uid": "u"}}
    caller = op.answers.rules.caller(None, None)  # nobody's: no limits bind it
    decision, _ = asyncio.run(op.answers._decide(obj, Interpretation(want), caller, NOW))
    table, book = NodeTable(nodes), Ledger(held).snapshot()
    assert decision.offers == []
    assert find_offers(want, POLICY, table, book, NOW) == []
    assert decision.message is not None
    assert decision.message["message"] == explain_no_offers(want, POLICY, table, book, NOW)


def test_a_decision_is_dated_when_it_is_made_not_when_its_set_began_to_wait() -> None:
    """A set read at ``NOW - 7`` that then waited for the decision lock (while, say, a session
    ended and gave its time back) is dated when it is decided: it holds nothing before."""
    op = operator_with([node("n1", cores=16)], [], inline_seconds=5.0)
    obj = {"metadata": {"name": "set", "namespace": "ns", "uid": "u"}}
    want = demand(cores=2, hours=2, between=DAY)
    caller = op.answers.rules.caller(None, None)
    decision, decided = asyncio.run(op.answers._decide(obj, Interpretation(want), caller, NOW - 7))
    assert decision.offers
    assert decided == NOW
