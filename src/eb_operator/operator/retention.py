"""Retention: done objects are deleted once their time to live has passed, so state stays bounded.

* An Execution in a final phase (COMPLETED, FAILED, CANCELLED, REJECTED, EXPIRED) is deleted
  ``ttlSecondsAfterFinished`` after it got there (its own ``spec.ttlSecondsAfterFinished``, else
  the platform's ``retention.ttlSecondsAfterFinished``, one day by default). Its children in its
  namespace (the finished Pod, kept until then for its logs; a notebook's Service and Secret) go
  with it, by their ownerReferences.
* An answered OfferSet is deleted ``retention.offerSetTtlSeconds`` after its offers expired (a NO:
  after the answer), once none of its offers is a session any more: an accepted offer's session
  runs the set's request, so the set stays as long as any of its Executions does.

Deletion is the leader's, from the sweeper, bounded per sweep and in concurrency (after a long
downtime the backlog drains over several sweeps instead of in one burst). Each delete names the
object's uid (a precondition), so an object made again under the same name is never deleted in
its place. The REST API then answers 404 for them (docs/api.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, Conflict
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.platform import Retention
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.state import AnsweredSet, ClusterState, ExecutionView

log = logging.getLogger("eb_operator.operator")

#: Deletes per sweep, and at once: a backlog drains over several sweeps.
PER_SWEEP = 2000
AT_ONCE = 8
#: A delete asked for is not asked again for this long (its watch event is on its way).
RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class Doomed:
    plural: str
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def execution_expired(view: ExecutionView, policy: Retention, now: int) -> bool:
    """A session in a final phase whose time to live after it got there has passed."""
    if view.phase not in FINAL_PHASES or view.deleting:
        return False
    finished = view.finished if view.finished is not None else view.phase_since
    ttl = view.ttl if view.ttl is not None else policy.ttl_seconds_after_finished
    return now >= finished + ttl


def offerset_expired(
    group: str, answered: AnsweredSet, state: ClusterState, policy: Retention, now: int
) -> bool:
    """An answered set done (offers expired, or a NO) for its time to live, with no session left."""
    return now >= answered.done + policy.offer_set_ttl_seconds and not state.groups.get(group)


def due(
    state: ClusterState, policy: Retention, now: int, mine: Callable[[str | None], bool]
) -> Iterator[Doomed]:
    """What retention deletes now, Executions first (a set goes once its sessions have)."""
    for view in list(state.executions.values()):
        if mine(view.namespace) and execution_expired(view, policy, now):
            yield Doomed(EXECUTIONS, view.namespace, view.name, view.uid)
    for group, answered in list(state.answered.items()):
        namespace, name = group.split("/", 1)
        if mine(namespace) and offerset_expired(group, answered, state, policy, now):
            yield Doomed(OFFERSETS, namespace, name, answered.uid)


class Reaper:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx
        self._asked: dict[str, float] = {}  # key -> when its delete was sent (monotonic)

    async def reap(self) -> int:
        """Delete what is due (at most ``PER_SWEEP``); returns how many were deleted."""
        ctx = self.ctx
        now, t = ctx.now(), time.monotonic()
        self._asked = {k: at for k, at in self._asked.items() if t - at < RETRY_AFTER}
        batch: list[Doomed] = []
        for d in due(ctx.state, ctx.policy.retention, now, ctx.mine):
            if f"{d.plural}:{d.key}" in self._asked:
                continue
            batch.append(d)
            if len(batch) >= PER_SWEEP:
                break
        if not batch:
            return 0
        gate = asyncio.Semaphore(AT_ONCE)
        results = await asyncio.gather(*(self._delete(d, gate) for d in batch))
        deleted = sum(results)
        log.info("%s", kv(msg="retention", deleted=deleted, due=len(batch)))
        return deleted

    async def _delete(self, d: Doomed, gate: asyncio.Semaphore) -> bool:
        ctx = self.ctx
        self._asked[f"{d.plural}:{d.key}"] = time.monotonic()
        async with gate:
            try:
                # each kind named as it is (tests/unit/install/test_rbac.py reads the calls)
                if d.plural == EXECUTIONS:
                    gone = await ctx.cluster.delete(EXECUTIONS, d.namespace, d.name, uid=d.uid)
                else:
                    gone = await ctx.cluster.delete(OFFERSETS, d.namespace, d.name, uid=d.uid)
            except Conflict:  # a new object of that name: not ours to delete
                return False
            except Exception as e:  # asked again at a later sweep
                log.warning("%s", kv(msg="retention delete failed", object=d.key, kind=d.plural, error=e))
                return False
        if gone:
            ctx.metrics.deleted.labels(d.plural).inc()
        return gone
