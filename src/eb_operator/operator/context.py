"""What every part of the operator shares: the cluster, the state, the policy, the decision lock,
the work queues, and the clock.

One :class:`OperatorContext` per operator, made by :class:`~eb_operator.operator.core.Operator`
and handed to each part (start-up, watch events, the sweeper, answers, accepts, direct requests,
Pods, status writes), so that a part does one job and reaches the rest only through this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from eb_operator.cluster.crs import Cluster
from eb_operator.engine import LedgerSnapshot, NodeTable
from eb_operator.model.platform import PlatformPolicy
from eb_operator.model.tenancy import session_namespace
from eb_operator.operator.config import OperatorConfig
from eb_operator.operator.events import EventPoster, kv
from eb_operator.operator.metrics import Metrics
from eb_operator.operator.state import ClusterState
from eb_operator.operator.workqueue import WorkQueue

log = logging.getLogger("eb_operator.operator")


class OperatorContext:
    def __init__(self, cluster: Cluster, config: OperatorConfig) -> None:
        self.cluster = cluster
        self.cfg = config
        self.state = ClusterState(config.clock)
        self.metrics = Metrics()
        self.policy = PlatformPolicy()
        self.policy_generation: int | None = None
        #: Every decision that takes capacity (offers, accepts, direct requests) holds it.
        self.lock = asyncio.Lock()
        #: Set once the state is loaded: no decision is made from a partial picture.
        self.ready = asyncio.Event()
        self.events = EventPoster(cluster)
        self.pending_offersets: dict[str, dict[str, Any]] = {}  # key -> the unanswered OfferSet
        #: "ns/offerset" -> the offer whose accept a peer is being asked for (under the lock):
        #: its siblings' accepts wait, as they would for the lock.
        self.accepting: dict[str, str] = {}
        self.pending_since: dict[str, float] = {}  # key -> when it was first seen unanswered (monotonic)
        self.not_ready_since: dict[str, float] = {}  # node -> when it was first seen NotReady
        self.last_sweep = time.monotonic()
        #: Set while this operator leads (``eb_operator.operator.leadership``): only then does it
        #: decide and write. A standby keeps its state current and its queues paused.
        self.leading = asyncio.Event()
        self.platform_report: tuple[str, dict[str, Any]] | None = None  # a status to write on it
        self.report_platform: Callable[[], None] = lambda: None
        self.stats: dict[str, int] = {"offersets": 0, "offers": 0, "accepts": 0, "pods": 0, "room_waits": 0}
        self.timings: dict[str, list[float]] = {}  # phase -> [count, seconds]
        self._unkeyed_routes_told = False
        # The queues' handlers are parts made with this context: the coordinator sets them.
        self.executions: WorkQueue[str]
        self.offersets: WorkQueue[str]
        self.cleanups: WorkQueue[tuple[str, str, str]]  # (namespace, uid, name) of a deleted Execution

    def now(self) -> int:
        return int(self.cfg.clock())

    def routing_policy(self) -> PlatformPolicy:
        """The policy sessions are prepared under: without the session key the gate could not let
        anyone into a routed notebook, so then no routes are made (said once in the log)."""
        policy = self.policy
        if policy.routes is None or self.cfg.session_key is not None:
            return policy
        if not self._unkeyed_routes_told:
            self._unkeyed_routes_told = True
            fix = "give the operator the session key the REST API has (EB_SESSION_KEY_FILE)"
            log.warning(
                "%s", kv(msg="the platform has routes but there is no session key: none are made", fix=fix)
            )
        return policy.model_copy(update={"routes": None})

    def children_namespace(self, namespace: str, owner: str) -> str:
        """Where the children (Pod, claims, Secrets) of a session that ``owner`` asks for in
        ``namespace`` run (:func:`~eb_operator.model.tenancy.session_namespace`): the one rule later
        sessions' storage lookups follow too."""
        return session_namespace(namespace, owner, self.cfg.sessions_namespace, self.policy.namespaces)

    def mine(self, namespace: str | None) -> bool:
        """Whether this operator reconciles objects of ``namespace``."""
        return self.cfg.namespaces is None or namespace in self.cfg.namespaces

    @contextlib.contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Count and time one named phase (reported by the liveness probe, as Kueue names its)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            entry = self.timings.setdefault(phase, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - t

    @contextlib.contextmanager
    def deciding(self, kind: str) -> Iterator[None]:
        """Time a decision held under the lock (``eb_operator_decision_seconds``)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.decision_seconds.labels(kind).observe(time.perf_counter() - t)

    def capacity(self, now: int) -> tuple[NodeTable, LedgerSnapshot]:
        """What a decision taking capacity at ``now`` sees (under the lock): the nodes' free
        capacity and a snapshot of the ledger, without the offers that have expired by then."""
        self.state.purge_offers(now)
        return self.state.node_table(self.policy), self.state.ledger.snapshot()

    def node_lost(self, node: str) -> bool:
        """The node is gone, or NotReady for at least ``node_lost_grace``."""
        if node not in self.state.nodes:
            return True
        since = self.not_ready_since.get(node)
        return since is not None and self.cfg.clock() - since >= self.cfg.node_lost_grace
