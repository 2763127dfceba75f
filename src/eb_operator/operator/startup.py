"""Start-up: the platform's policy and every cache rebuilt from LISTs, before any decision.

The reservation ledger must hold every reservation before the first offer is made (see
docs/operator.md, "No double booking"), so the operator reads the whole cluster first, page by
page, and only then starts its workers. Each kind is read by its :class:`~eb_operator.cluster.
feeds.Feed`, which then watches from that very listing's resourceVersion: after the start-up
nothing is listed again, and an OfferSet made during the start-up is answered as soon as the
OfferSet watch starts.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, PLATFORMS, cr_path
from eb_operator.cluster.feeds import Feed
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.watching import WatchEvents

log = logging.getLogger("eb_operator.operator")


@dataclass
class Feeds:
    """One feed per kind the operator follows, in the order they are loaded."""

    platforms: Feed
    nodes: Feed
    pods: Feed
    executions: Feed
    offersets: Feed

    def all(self) -> list[Feed]:
        return [self.platforms, self.nodes, self.pods, self.executions, self.offersets]


def make_feeds(ctx: OperatorContext, watch: WatchEvents) -> Feeds:
    def platform(obj: Mapping[str, Any], deleted: bool) -> None:
        watch.on_platform_event(obj, deleted)

    c = ctx.cluster
    return Feeds(
        platforms=Feed(
            c, cr_path(PLATFORMS), platform, query={"fieldSelector": f"metadata.name={ctx.cfg.platform}"}
        ),
        nodes=Feed(c, "/api/v1/nodes", watch.on_node),
        pods=Feed(c, "/api/v1/pods", watch.on_pod),
        executions=Feed(c, cr_path(EXECUTIONS), watch.on_execution),
        offersets=Feed(c, cr_path(OFFERSETS), watch.on_offerset),
    )


async def load_state(ctx: OperatorContext, feeds: Feeds) -> None:
    """Read the platform and record every node, Pod, Execution and OfferSet; then ``ctx.ready``."""
    # Everything allocated so far (imported modules: kopf, the Kubernetes client's models,
    # pydantic's schemas) lives as long as the process: keep it out of every collection, so a
    # full collection walks only the broker's own state (a shorter pause, and fewer of them).
    gc.freeze()
    if not await feeds.platforms.load():
        log.warning("platform=%s not found; using the default policy", ctx.cfg.platform)
    # Page by page, each page recorded before the next is read: the start-up peak is one page,
    # not every object of the cluster at once. Executions before OfferSets: an offer written
    # as an Execution is counted as that.
    for feed in (feeds.nodes, feeds.pods, feeds.executions, feeds.offersets):
        await feed.load()
    # Free the pages' garbage, then keep what was loaded (the state of every object in the
    # cluster, long-lived) out of later collections too: a full collection otherwise walks
    # every view of 50,000 Executions, a pause of ~100 ms at a random decision. Frozen objects
    # are still freed by reference counting when the state drops them.
    gc.collect()
    gc.freeze()
    ctx.ready.set()
