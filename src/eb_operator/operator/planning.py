"""The offer engine, run for a decision without holding the operator's event loop for long.

The engine is CPU work over immutable snapshots (the node table and the ledger snapshot a
decision takes under its lock), so it can run in another thread while the event loop goes on
serving watch events, status writes and the other OfferSets. A thread costs a hand-over and then
competes with the loop for the GIL, which would slow the many short decisions, so a search first
runs inline with a deadline of ``OperatorConfig.decide_inline_seconds`` (5 ms; a search that
finds a node at the first start ends far sooner). One that passes it is stopped there and run
again, whole, in a worker thread: the loop is held for about that bound per decision, then for
at most the GIL's switch interval (5 ms) at a time while the thread runs. The caller keeps the
decision lock across the wait, so no other decision sees the ledger without this one's offers.
"""

from __future__ import annotations

import asyncio
import time

from eb_operator.engine import LedgerSnapshot, NodeTable, OfferPlan, SearchOverrun, plan_offers
from eb_operator.engine.types import Demand
from eb_operator.model.platform import PlatformPolicy
from eb_operator.operator.context import OperatorContext


async def plan(
    ctx: OperatorContext,
    demand: Demand,
    table: NodeTable,
    book: LedgerSnapshot,
    now: int,
    policy: PlatformPolicy | None = None,
) -> OfferPlan:
    """One search for ``demand`` (its offers, or the reason for a NO), off the loop if long; under
    ``policy`` (default: the platform's)."""
    policy = policy or ctx.policy
    timer = time.perf_counter
    try:
        deadline = timer() + ctx.cfg.decide_inline_seconds
        return plan_offers(demand, policy, table, book, now, timer=timer, deadline=deadline)
    except SearchOverrun:
        pass
    with ctx.timed("decide_in_thread"):
        return await asyncio.to_thread(plan_offers, demand, policy, table, book, now)
