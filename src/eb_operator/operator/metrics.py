"""The operator's Prometheus metrics (``eb_operator_*``), served on its own port (``--metrics``).

Two kinds, in one registry per operator (so tests can run several):

* counted where things happen (:class:`Metrics`): answers by result and reason, offers made,
  accepts, the time from an OfferSet first seen to its answer stored, the time decisions hold
  the decision lock, sessions that waited for room on their node, objects deleted by retention;
* read from the operator's state at each scrape (:class:`StateCollector`): sessions by phase
  and how many are overdue for their next step, reserved against allocatable capacity per
  resource, the work queues, the watches, leadership.

The scrape runs in the operator's event loop (``serve_metrics``), so it reads the state between
two events, never while one changes it. docs/operations.md lists every metric and the alerts.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.times import parse_instant
from eb_operator.operator.lifecycle import OVERRUN_GRACE

if TYPE_CHECKING:
    from eb_operator.operator.core import Operator
    from eb_operator.operator.state import ExecutionView

#: Latency buckets, seconds: an answer takes tens of milliseconds when idle, seconds under load.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: How long past when its next step is due a session counts as overdue (stuck): generous enough
#: for a session waiting for room on its node (``pods.ROOM_WAIT``) or a Pod pulling its image.
OVERDUE_AFTER = 300


def reason_label(message_type: str | None) -> str:
    """``urn:ivoa:eb:no-capacity`` or ``urn:no-capacity`` -> ``no-capacity``: a bounded label."""
    text = str(message_type or "unknown")
    for prefix in ("urn:ivoa:eb:", "urn:"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.answered = Counter(
            "eb_operator_offersets_answered",
            "Offer sets answered, by result (YES/NO) and reason (offered, or the first refusal's type)",
            ["result", "reason"],
            registry=r,
        )
        self.offers = Counter("eb_operator_offers", "Offers made in answered offer sets", registry=r)
        self.answer_seconds = Histogram(
            "eb_operator_offerset_answer_seconds",
            "From an unanswered OfferSet first seen by the operator to its answer stored",
            buckets=BUCKETS,
            registry=r,
        )
        self.decision_seconds = Histogram(
            "eb_operator_decision_seconds",
            "Time a decision holds the decision lock (engine and ledger), by kind",
            ["kind"],
            buckets=BUCKETS,
            registry=r,
        )
        self.accepts = Counter(
            "eb_operator_accepts", "Accepts decided, by outcome (accepted, refused)", ["outcome"], registry=r
        )
        self.room_waits = Counter(
            "eb_operator_room_waits",
            "Sessions whose Pod waited for another Pod to leave their node",
            registry=r,
        )
        self.deleted = Counter(
            "eb_operator_retention_deleted",
            "Objects deleted by retention (their time to live after they ended had passed), by kind",
            ["kind"],
            registry=r,
        )
        self.transitions = Counter(
            "eb_operator_phase_transitions",
            "Session phase changes written, by phase reached",
            ["phase"],
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _gauge(name: str, doc: str, labels: list[str], rows: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=labels)
    for key, v in sorted(rows.items()):
        g.add_metric(list(key), v)
    return g


def _counter(
    name: str, doc: str, labels: list[str], rows: dict[tuple[str, ...], float]
) -> CounterMetricFamily:
    c = CounterMetricFamily(name, doc, labels=labels)
    for key, v in sorted(rows.items()):
        c.add_metric(list(key), v)
    return c


def overdue(view: ExecutionView, now: int) -> bool:
    """The session should have left its phase by now (with ``OVERDUE_AFTER`` to spare)."""
    r = view.reservation or {}
    p = view.phase
    if p is None or p in FINAL_PHASES or not r:
        return False
    if p == Phase.OFFERED:
        due = view.expires
    elif p in (Phase.ACCEPTED, Phase.WAITING):
        due = parse_instant(r["prepareStart"])
    elif p in (Phase.PREPARING, Phase.READY):
        due = parse_instant(r["start"])
    elif p == Phase.RUNNING:
        due = parse_instant(r["releaseEnd"]) + OVERRUN_GRACE
    else:  # RELEASING
        due = parse_instant(r["releaseEnd"])
    return due is not None and now > due + OVERDUE_AFTER


class StateCollector(Collector):
    """Gauges read from the operator's state at scrape time."""

    def __init__(self, op: Operator, clock: Callable[[], float] = time.monotonic) -> None:
        self.op = op
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        ctx = self.op.ctx
        now = ctx.now()
        yield _gauge(
            "eb_operator_leading",
            "1 while this operator decides (peering)",
            [],
            {(): float(ctx.leading.is_set())},
        )
        yield _gauge("eb_operator_ready", "1 once the state is loaded", [], {(): float(ctx.ready.is_set())})
        yield from self._sessions(now)
        yield from self._capacity(now)
        yield from self._queues()
        yield from self._watches()

    def _sessions(self, now: int) -> Iterator[Metric]:
        ctx = self.op.ctx
        phases: dict[tuple[str, ...], float] = {(str(p),): 0.0 for p in Phase}
        late: dict[tuple[str, ...], float] = {}
        oldest: dict[tuple[str, ...], float] = {}
        for view in list(ctx.state.executions.values()):
            if not ctx.mine(view.namespace) or view.phase is None:
                continue
            key = (str(view.phase),)
            phases[key] += 1
            if view.phase not in FINAL_PHASES:
                oldest[key] = max(oldest.get(key, 0.0), float(now - view.phase_since))
                if overdue(view, now):
                    late[key] = late.get(key, 0.0) + 1
        yield _gauge(
            "eb_operator_sessions", "Executions by phase (this operator's namespaces)", ["phase"], phases
        )
        yield _gauge(
            "eb_operator_sessions_overdue",
            f"Sessions whose next step is more than {OVERDUE_AFTER} s overdue, by phase (stuck)",
            ["phase"],
            late,
        )
        yield _gauge(
            "eb_operator_sessions_oldest_in_phase_seconds",
            "How long the longest-waiting session has been in its phase (since this operator saw it enter)",
            ["phase"],
            oldest,
        )
        held = sum(
            1 for r in ctx.state.ledger if r.phase == Phase.OFFERED and r.key not in ctx.state.executions
        )
        yield _gauge(
            "eb_operator_offers_held",
            "Offers in answered OfferSets' statuses holding capacity",
            [],
            {(): held},
        )

    def _capacity(self, now: int) -> Iterator[Metric]:
        """Over the platform's nodes (Ready, schedulable, selected): allocatable, what other Pods
        use, and what the broker's reservations hold now; cpu in cores, memory in bytes."""
        ctx = self.op.ctx
        state = ctx.state
        table = state.node_table(ctx.policy)
        selected = table.selected(ctx.policy.node_selector)
        names = {n.name for n in table} if selected is None else set(selected)
        alloc: dict[str, float] = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
        free: dict[str, float] = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
        for name in names:
            info, cap = state.nodes.get(name), table.get(name)
            if info is None or cap is None:
                continue
            alloc["cpu"] += info.allocatable.cpu_millis / 1000
            alloc["memory"] += info.allocatable.memory_bytes
            alloc["gpu"] += sum(info.allocatable.gpus.values())
            free["cpu"] += cap.free.cpu_millis / 1000
            free["memory"] += cap.free.memory_bytes
            free["gpu"] += sum(cap.free.gpus.values())
        reserved = {"cpu": 0.0, "memory": 0.0, "gpu": 0.0}
        for r in state.ledger:
            if r.node in names and r.start <= now < r.end:
                reserved["cpu"] += r.resources.cpu_millis / 1000
                reserved["memory"] += r.resources.memory_bytes
                reserved["gpu"] += sum(r.resources.gpus.values())
        other = {k: alloc[k] - free[k] for k in alloc}
        doc = "the platform's Ready, schedulable nodes: cpu in cores, memory in bytes, gpu in devices"
        yield _gauge("eb_operator_capacity_allocatable", f"Allocatable on {doc}", ["resource"], _rows(alloc))
        yield _gauge(
            "eb_operator_capacity_other_pods",
            f"Requested by Pods the broker does not own, on {doc}",
            ["resource"],
            _rows(other),
        )
        yield _gauge(
            "eb_operator_capacity_reserved",
            f"Held now by the broker's reservations, on {doc}",
            ["resource"],
            _rows(reserved),
        )
        ratio = {k: (reserved[k] / free[k] if free[k] else 0.0) for k in free}
        yield _gauge(
            "eb_operator_capacity_utilisation_ratio",
            "Reserved now / what the broker may hand out (allocatable minus other Pods), per resource",
            ["resource"],
            _rows(ratio),
        )

    def _queues(self) -> Iterator[Metric]:
        ctx = self.op.ctx
        queues = {"executions": ctx.executions, "offersets": ctx.offersets}
        yield _gauge(
            "eb_operator_queue_depth",
            "Keys waiting in a work queue",
            ["queue"],
            {(n,): len(q) for n, q in queues.items()},
        )
        yield _gauge(
            "eb_operator_queue_oldest_seconds",
            "How long the longest-waiting key of a work queue has waited",
            ["queue"],
            {(n,): q.oldest_wait() for n, q in queues.items()},
        )
        yield _counter(
            "eb_operator_reconciles",
            "Keys processed by a work queue",
            ["queue"],
            {(n,): q.processed for n, q in queues.items()},
        )
        yield _counter(
            "eb_operator_reconcile_errors",
            "Keys whose processing failed (retried with backoff)",
            ["queue"],
            {(n,): q.failed for n, q in queues.items()},
        )
        yield _gauge(
            "eb_operator_unanswered_offersets",
            "OfferSets seen and not answered yet",
            [],
            {(): len(ctx.pending_offersets)},
        )

    def _watches(self) -> Iterator[Metric]:
        stats = self.op.feed_stats()
        now = self.clock()
        yield _counter(
            "eb_operator_watch_events",
            "Objects delivered by a watch (or its listing)",
            ["resource"],
            {(n,): s.events for n, s in stats.items()},
        )
        restarts: dict[tuple[str, ...], float] = {}
        for n, s in stats.items():
            restarts[(n, "expired")] = s.relists
            restarts[(n, "error")] = s.errors
        yield _counter(
            "eb_operator_watch_restarts",
            "Watches started again: after their resourceVersion expired (a new listing) or after an error",
            ["resource", "reason"],
            restarts,
        )
        yield _counter(
            "eb_operator_watch_requests",
            "Watch requests made (each ends after 25 s)",
            ["resource"],
            {(n,): s.watches for n, s in stats.items()},
        )
        yield _gauge(
            "eb_operator_watch_silence_seconds",
            "Seconds since a watch last heard from the API server (a request, an event, a bookmark)",
            ["resource"],
            {(n,): max(0.0, now - s.last_contact) for n, s in stats.items()},
        )


def _rows(values: dict[str, float]) -> dict[tuple[str, ...], float]:
    return {(k,): v for k, v in values.items()}


async def serve_metrics(op: Operator, port: int, host: str = "0.0.0.0") -> Callable[[], Awaitable[None]]:
    """Serve ``/metrics`` in the operator's event loop; returns the coroutine function that stops it."""
    registry = op.ctx.metrics.registry

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner.cleanup
