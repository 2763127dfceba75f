"""The operator: the parts that make its decisions, composed around one shared context.

The operator's own feeds (``eb_operator.cluster.feeds``: a LIST at start, then a WATCH from
that LIST's resourceVersion) deliver every change to
:class:`~eb_operator.operator.watching.WatchEvents`: they only update the
:class:`~eb_operator.operator.state.ClusterState` and queue keys. Workers then reconcile each key
from the newest state (level-based): the same state always leads to the same step, so a key
processed twice, or after a restart, does no harm. kopf runs the start-up and clean-up, the
liveness endpoint and peering; ``eb_operator.operator.leadership`` reads the peering to decide
whether this operator leads (decides and writes) or stands by.

=====================  =====================================================================
part                   job
=====================  =====================================================================
``startup``            load the policy and every cache before deciding
``watching``           record watch events, queue affected keys
``leadership``         lead or stand by, as kopf's peering says
``sweeper``            queue what is due, delete expired storage
``answering``          answer offer sets with held offers
``sharing``            rates, limits and shares of callers
``namespaces``         owner namespaces, children cleaned up
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

1. one leading operator (kopf peering) decides from the reservation ledger, rebuilt from a LIST
   of every Execution before any offer is made and then kept current by watch events;
2. every decision that takes capacity (offers, accepts, direct requests) runs under one asyncio
   lock over a snapshot of that ledger, and puts its reservations into the ledger before the
   lock is released, so the next decision counts them;
3. a reservation is only shown to a client (OfferSet status, ACCEPTED) after the API server has
   it; a write that fails takes its reservation back out of the ledger.

Offers are held in the OfferSet's status, not as Executions (``eb_operator.cluster.offer_status``):
an answer is one status write, and an offer nobody takes costs no write when it lapses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from eb_operator.cluster.crs import PLATFORMS, Cluster, NotFound
from eb_operator.cluster.feeds import Feed
from eb_operator.operator.accepting import Accepts
from eb_operator.operator.answering import OfferSetAnswers
from eb_operator.operator.config import NODE_LOST_GRACE, OperatorConfig
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.direct import DirectRequests
from eb_operator.operator.directory import PeerDirectory
from eb_operator.operator.events import kv
from eb_operator.operator.finishing import Finishing
from eb_operator.operator.forwarding import Forwarding
from eb_operator.operator.leadership import PEERING_PATH, Leadership
from eb_operator.operator.metrics import StateCollector, serve_metrics
from eb_operator.operator.namespaces import OwnerNamespaces
from eb_operator.operator.pods import Pods
from eb_operator.operator.reconcile import Reconciler
from eb_operator.operator.remote import RemoteSessions
from eb_operator.operator.sharing import SharingRules
from eb_operator.operator.startup import Feeds, load_state, make_feeds
from eb_operator.operator.state import ClusterState
from eb_operator.operator.status import StatusWriter
from eb_operator.operator.sweeper import Sweeper
from eb_operator.operator.watching import WatchEvents
from eb_operator.operator.workqueue import WorkQueue

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]

#: A feed that has not heard from the API server for this long has gone deaf (each watch request
#: ends after 25 s and the next one starts at once): the liveness probe fails.
DEAF_AFTER = 120.0


class Operator:
    def __init__(self, cluster: Cluster, config: OperatorConfig | None = None) -> None:
        config = config or OperatorConfig()
        ctx = self.ctx = OperatorContext(cluster, config)
        self.rules = SharingRules(ctx)
        self.namespaces = OwnerNamespaces(ctx)
        self.watch = WatchEvents(ctx, self.namespaces)
        self.sweeper = Sweeper(ctx, self.rules, self.namespaces)
        self.peers = PeerDirectory(ctx)
        self.answers = OfferSetAnswers(ctx, self.rules, Forwarding(ctx, self.peers))
        status = StatusWriter(ctx)
        self.remote = RemoteSessions(ctx, status, self.peers)
        accepts = Accepts(ctx, status, self.rules, self.remote.release_siblings)
        self.reconciler = Reconciler(
            ctx,
            status,
            accepts,
            DirectRequests(ctx, status, self.rules),
            Pods(ctx, self.namespaces),
            self.remote,
            self.namespaces,
            Finishing(ctx),
        )
        ctx.executions = WorkQueue("executions", self.reconciler.reconcile, config.workers)
        ctx.offersets = WorkQueue("offersets", self.answers.answer, config.offer_workers)
        ctx.cleanups = WorkQueue("cleanups", self.namespaces.forget, 2)
        ctx.executions.pause()  # until this operator leads
        ctx.offersets.pause()
        ctx.cleanups.pause()
        ctx.report_platform = self._report_platform
        self.leadership = Leadership(config.identity, config.priority, config.peering, self._on_lead)
        self.feeds: Feeds | None = None
        self.peering: Feed | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop_metrics: Callable[[], Awaitable[None]] | None = None
        ctx.metrics.registry.register(StateCollector(self))
        # what the feeds call (and the tests, directly)
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
        """Read the platform, rebuild every cache from LISTs, start the workers and the watches
        from those LISTs, then lead or stand by as the peering says."""
        ctx = self.ctx
        if ctx.cfg.metrics_port is not None:
            self._stop_metrics = await serve_metrics(self, ctx.cfg.metrics_port)
        self.feeds = make_feeds(ctx, self.watch)
        await load_state(ctx, self.feeds)
        ctx.executions.start()
        ctx.offersets.start()
        ctx.cleanups.start()
        ctx.events.start()
        self.sweeper.start()
        self.peers.start()
        for feed in self.feeds.all():
            feed.start()
        if ctx.cfg.peering is not None:
            self.peering = Feed(
                ctx.cluster, PEERING_PATH, self.leadership.on_peering, query=self.leadership.query
            )
            await self.peering.load()
            self.peering.start()
        self.leadership.start()
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

    def _on_lead(self, leading: bool) -> None:
        """Start deciding (queue every key: level-based, so the whole picture is looked at once)
        or stop (drop the queues: the leader does the work)."""
        ctx = self.ctx
        if not leading:
            ctx.leading.clear()
            ctx.executions.pause()
            ctx.offersets.pause()
            ctx.cleanups.pause()
            return
        ctx.leading.set()
        ctx.executions.resume()
        ctx.offersets.resume()
        ctx.cleanups.resume()
        for view in list(ctx.state.executions.values()):
            if ctx.mine(view.namespace):
                ctx.executions.add(view.key)
        for key in list(ctx.pending_offersets):
            ctx.offersets.add(key)
        self._report_platform()

    def _report_platform(self) -> None:
        """Write the platform's status (valid, the nodes it selects), once this operator leads."""
        ctx = self.ctx
        if ctx.platform_report is None or not ctx.leading.is_set():
            return
        name, status = ctx.platform_report
        ctx.platform_report = None

        async def write() -> None:
            try:
                await ctx.cluster.patch(PLATFORMS, None, name, {"status": status}, status=True)
            except NotFound:
                pass
            except Exception as e:  # reported again with the next change of the platform
                log.warning("%s", kv(msg="platform status not written", platform=name, error=e))

        task = asyncio.create_task(write(), name="platform-status")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def feed_stats(self) -> dict[str, Any]:
        feeds = self.feeds.all() if self.feeds is not None else []
        if self.peering is not None:
            feeds.append(self.peering)
        return {f.name: f.stats for f in feeds}

    async def stop(self) -> None:
        self.leadership.stop()
        for feed in [*(self.feeds.all() if self.feeds is not None else []), self.peering]:
            if feed is not None:
                await feed.stop()
        await self.sweeper.stop()
        await self.peers.stop()
        await self.remote.stop()
        if self._stop_metrics is not None:
            await self._stop_metrics()
        await self.ctx.executions.stop()
        await self.ctx.offersets.stop()
        await self.ctx.cleanups.stop()
        await self.ctx.events.stop()

    def health(self) -> dict[str, Any]:
        """Liveness: raises when the work has stopped flowing."""
        ctx = self.ctx
        stuck = max(ctx.executions.oldest_wait(), ctx.offersets.oldest_wait())
        if stuck > 120:
            raise RuntimeError(f"work queue stalled: a key has waited {stuck:.0f} s")
        if time.monotonic() - ctx.last_sweep > 5 * ctx.cfg.sweep_seconds + 30:
            raise RuntimeError("the expiry sweeper has stopped")
        now = time.monotonic()
        for name, stats in self.feed_stats().items():
            if now - stats.last_contact > DEAF_AFTER:
                raise RuntimeError(
                    f"the {name} watch has not heard from the API server for {DEAF_AFTER:.0f} s"
                )
        return {
            "ready": ctx.ready.is_set(),
            "leading": ctx.leading.is_set(),
            "executions": len(ctx.state.executions),
            "reservations": len(ctx.state.ledger),
            "queued": len(ctx.executions) + len(ctx.offersets),
            **ctx.stats,
            "mean_ms": {k: round(1000 * v[1] / v[0], 2) for k, v in ctx.timings.items() if v[0]},
        }


__all__ = ["NODE_LOST_GRACE", "Operator", "OperatorConfig"]
