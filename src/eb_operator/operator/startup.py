"""Start-up: the platform's policy and every cache rebuilt from LISTs, before any decision.

The reservation ledger must hold every reservation before the first offer is made (see
docs/operator.md, "No double booking"), so the operator reads the whole cluster first, page by
page, and only then starts its workers.
"""

from __future__ import annotations

import gc
import logging

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, PLATFORMS, NotFound, cr_path
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.watching import WatchEvents

log = logging.getLogger("eb_operator.operator")


async def load_state(ctx: OperatorContext, watch: WatchEvents) -> None:
    """Read the platform and record every node, Pod, Execution and OfferSet; then ``ctx.ready``."""
    # Everything allocated so far (imported modules: kopf, the Kubernetes client's models,
    # pydantic's schemas) lives as long as the process: keep it out of every collection, so a
    # full collection walks only the broker's own state (a shorter pause, and fewer of them).
    gc.freeze()
    try:
        watch.on_platform(await ctx.cluster.get(PLATFORMS, None, ctx.cfg.platform))
    except NotFound:
        log.warning("%s", kv(msg="platform not found; using the default policy", platform=ctx.cfg.platform))
    # Page by page, each page recorded before the next is read: the start-up peak is one page,
    # not every object of the cluster at once. Executions before OfferSets: an offer written
    # as an Execution is counted as that.
    record = ctx.state
    for listing, on in (
        (ctx.cluster.pages("/api/v1/nodes"), record.on_node),
        (ctx.cluster.pages("/api/v1/pods"), record.on_pod),
        (ctx.cluster.pages(cr_path(EXECUTIONS)), record.on_execution),
        (ctx.cluster.pages(cr_path(OFFERSETS)), record.on_offerset),
    ):
        async for page in listing:
            for obj in page:
                on(obj)
    # Free the pages' garbage, then keep what was loaded (the state of every object in the
    # cluster, long-lived) out of later collections too: a full collection otherwise walks
    # every view of 50,000 Executions, a pause of ~100 ms at a random decision. Frozen objects
    # are still freed by reference counting when the state drops them.
    gc.collect()
    gc.freeze()
    ctx.ready.set()
