"""The operator: the parts that make its decisions, composed around one shared context.

kopf delivers watch events to ``eb_operator.operator.handlers``, which hand them to
:class:`~eb_operator.operator.watching.WatchEvents`: they only update the
:class:`~eb_operator.operator.state.ClusterState` and queue keys. Workers then reconcile each key
from the newest state (level-based): the same state always leads to the same step, so a key
processed twice, or after a restart, does no harm.

=====================  =====================================================================
part                   job
=====================  =====================================================================
``startup``            load the policy and every cache before deciding
``watching``           record watch events, queue affected keys
``sweeper``            queue what is due, delete expired storage
``answering``          answer offer sets with held offers
``reconcile``          move one Execution to its next step
``accepting``          accept an offer after re-checking capacity
``direct``             reserve a slot for direct requests
``pods``               create and delete session Pods
``status``             write, announce Execution status changes
``directory``          know, probe and report peer brokers
``forwarding``         ask the peer brokers for offers
``remote``             accept at peers, mirror their sessions
=====================  =====================================================================

No double booking (see docs/operator.md):

1. one active operator (kopf peering) holds the reservation ledger, rebuilt from a LIST of every
   Execution before any offer is made and then kept current by watch events;
2. every decision that takes capacity (offers, accepts, direct requests) runs under one asyncio
   lock over a snapshot of that ledger, and puts its reservations into the ledger before the
   lock is released, so the next decision counts them;
3. a reservation is only shown to a client (OfferSet status, ACCEPTED) after the API server has
   it; a write that fails takes its reservation back out of the ledger.

Offers are held in the OfferSet's status, not as Executions (``eb_operator.cluster.offer_status``):
an answer is one status write, and an offer nobody takes costs no write when it lapses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.crs import Cluster
from eb_operator.operator.accepting import Accepts
from eb_operator.operator.answering import OfferSetAnswers
from eb_operator.operator.config import NODE_LOST_GRACE, OperatorConfig
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.direct import DirectRequests
from eb_operator.operator.directory import PeerDirectory
from eb_operator.operator.events import kv
from eb_operator.operator.forwarding import Forwarding
from eb_operator.operator.pods import Pods
from eb_operator.operator.reconcile import Reconciler
from eb_operator.operator.remote import RemoteSessions
from eb_operator.operator.startup import load_state
from eb_operator.operator.state import ClusterState
from eb_operator.operator.status import StatusWriter
from eb_operator.operator.sweeper import Sweeper
from eb_operator.operator.watching import WatchEvents
from eb_operator.operator.workqueue import WorkQueue

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]


class Operator:
    def __init__(self, cluster: Cluster, config: OperatorConfig | None = None) -> None:
        config = config or OperatorConfig()
        ctx = self.ctx = OperatorContext(cluster, config)
        self.watch = WatchEvents(ctx)
        self.sweeper = Sweeper(ctx)
        self.peers = PeerDirectory(ctx)
        self.answers = OfferSetAnswers(ctx, Forwarding(ctx, self.peers))
        status = StatusWriter(ctx)
        self.remote = RemoteSessions(ctx, status, self.peers)
        accepts = Accepts(ctx, status, self.remote.release_siblings)
        self.reconciler = Reconciler(
            ctx, status, accepts, DirectRequests(ctx, status), Pods(ctx), self.remote
        )
        ctx.executions = WorkQueue("executions", self.reconciler.reconcile, config.workers)
        ctx.offersets = WorkQueue("offersets", self.answers.answer, config.offer_workers)
        # what the kopf handlers call
        self.on_execution = self.watch.on_execution
        self.on_offerset = self.watch.on_offerset
        self.on_pod = self.watch.on_pod
        self.on_node = self.watch.on_node
        self.on_platform = self.watch.on_platform
        self.sweep = self.sweeper.sweep
        self.node_lost = ctx.node_lost

    @property
    def cluster(self) -> Cluster:
        return self.ctx.cluster

    @property
    def state(self) -> ClusterState:
        return self.ctx.state

    async def start(self) -> None:
        """Read the platform, rebuild every cache from LISTs, then start the workers."""
        ctx = self.ctx
        await load_state(ctx, self.watch)
        ctx.executions.start()
        ctx.offersets.start()
        ctx.events.start()
        self.sweeper.start()
        self.peers.start()
        log.info(
            "%s",
            kv(
                msg="started",
                platform=ctx.cfg.platform,
                nodes=len(ctx.state.nodes),
                executions=len(ctx.state.executions),
                reservations=len(ctx.state.ledger),
            ),
        )

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.peers.stop()
        await self.remote.stop()
        await self.ctx.executions.stop()
        await self.ctx.offersets.stop()
        await self.ctx.events.stop()

    def health(self) -> dict[str, Any]:
        """Liveness: raises when the work has stopped flowing."""
        ctx = self.ctx
        stuck = max(ctx.executions.oldest_wait(), ctx.offersets.oldest_wait())
        if stuck > 120:
            raise RuntimeError(f"work queue stalled: a key has waited {stuck:.0f} s")
        if time.monotonic() - ctx.last_sweep > 5 * ctx.cfg.sweep_seconds + 30:
            raise RuntimeError("the expiry sweeper has stopped")
        return {
            "ready": ctx.ready.is_set(),
            "executions": len(ctx.state.executions),
            "reservations": len(ctx.state.ledger),
            "queued": len(ctx.executions) + len(ctx.offersets),
            **ctx.stats,
            "mean_ms": {k: round(1000 * v[1] / v[0], 2) for k, v in ctx.timings.items() if v[0]},
        }


__all__ = ["NODE_LOST_GRACE", "Operator", "OperatorConfig"]
