"""The sweeper: every ``sweep_seconds``, queue what is due, delete storage past its lifetime and
done objects past their time to live (``eb_operator.operator.retention``).

It catches up after downtime and after missed timers: offers that expired, sessions whose
preparation should start, OfferSets still without an answer. Only while this operator leads.
"""

from __future__ import annotations

import asyncio
import logging
import time

from eb_operator.engine.types import Phase
from eb_operator.model.times import parse_instant
from eb_operator.operator import children
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.namespaces import OwnerNamespaces
from eb_operator.operator.retention import Reaper
from eb_operator.operator.sharing import SharingRules
from eb_operator.operator.state import ExecutionView

log = logging.getLogger("eb_operator.operator")


class Sweeper:
    def __init__(self, ctx: OperatorContext, rules: SharingRules, namespaces: OwnerNamespaces) -> None:
        self.ctx = ctx
        self.reaper = Reaper(ctx)
        self.rules = rules
        self.namespaces = namespaces
        self._last_namespace_sweep = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _forever(self) -> None:
        ctx = self.ctx
        while True:
            await asyncio.sleep(ctx.cfg.sweep_seconds)
            self.sweep()
            if not ctx.leading.is_set():
                continue
            try:  # persistent storage past its lifetime (eb_operator.operator.children)
                await children.sweep_claims(ctx.cluster, ctx.mine, ctx.state.phase_of_uid, ctx.now())
            except Exception as e:
                log.warning("%s", kv(msg="storage sweep failed", error=e))
            try:  # done objects past their time to live (eb_operator.operator.retention)
                await self.reaper.reap()
            except Exception as e:
                log.warning("%s", kv(msg="retention sweep failed", error=e))
            due = time.monotonic() - self._last_namespace_sweep >= ctx.cfg.namespace_sweep_seconds
            if due:  # owner namespaces: orphans, and those empty for long enough
                self._last_namespace_sweep = time.monotonic()
                try:
                    await self.namespaces.sweep()
                except Exception as e:
                    log.warning("%s", kv(msg="namespace sweep failed", error=e))

    def sweep(self) -> None:
        """Queue every Execution whose offer expired or whose next step is due, and every
        OfferSet still without an answer."""
        ctx = self.ctx
        ctx.last_sweep = time.monotonic()
        now = ctx.now()
        ctx.state.purge_offers(now)  # a standby too: its memory stays bounded
        self.rules.forget_idle(ctx.cfg.clock())
        if not ctx.leading.is_set():
            return
        for view in list(ctx.state.executions.values()):
            if _due(view, now):
                ctx.executions.add(view.key)
        for key in list(ctx.pending_offersets):
            ctx.offersets.add(key)


def _due(view: ExecutionView, now: int) -> bool:
    if view.phase == Phase.OFFERED:
        return view.expires is not None and view.expires <= now
    if view.phase in (Phase.ACCEPTED, Phase.WAITING) and view.reservation:
        return parse_instant(view.reservation["prepareStart"]) <= now
    return False
