"""Status writes of Executions: a step's phase, conditions and messages (and the access URLs of a
session a person connects to), written resourceVersion-guarded, announced as an Event and a log
line."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from eb_operator.cluster.crs import EXECUTIONS, Conflict, NotFound
from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES
from eb_operator.operator import children
from eb_operator.operator.builders.status import execution_status
from eb_operator.operator.context import OperatorContext
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import Step
from eb_operator.operator.requests import Interpretation
from eb_operator.operator.state import ExecutionView, execution_view
from eb_operator.operator.workqueue import Retry

log = logging.getLogger("eb_operator.operator")


class StatusWriter:
    def __init__(self, ctx: OperatorContext) -> None:
        self.ctx = ctx

    def status(
        self, view: ExecutionView, phase: Phase | None, reason: str, message: str, refused: bool = False
    ) -> dict[str, Any]:
        return execution_status(view, phase, reason, message, self.ctx.now(), refused)

    async def record(
        self,
        view: ExecutionView,
        step: Step,
        child_namespace: str | None = None,
        extra: Mapping[str, Any] | None = None,
        messages: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Write what ``step`` says (its phase, or the refusal of the desired phase) and announce it;
        ``child_namespace``: where the session's children were just made (recorded with it);
        ``extra``: more status fields (its storage, its kept log); ``messages``: more messages."""
        ctx = self.ctx
        phase = step.phase or view.phase
        status = self.status(view, phase, step.reason, step.message, step.refused)
        if child_namespace is not None and child_namespace != view.child_namespace:
            status["childNamespace"] = child_namespace
        status |= dict(extra or {})
        if messages:
            status["messages"] = [*status.get("messages", []), *(dict(m) for m in messages)]
        pod = ctx.state.pod_of(view)
        where = child_namespace or view.child_namespace or view.namespace
        reach = await children.access(ctx.cluster, where, view.name, phase, pod)
        if reach is None and phase in FINAL_PHASES and view.access_protocols:
            # its Pod is gone already (deleted at once on a kwok node, or lost): still FINISHED
            reach = {"access": [{"status": "FINISHED", "protocol": p} for p in view.access_protocols]}
        if reach is not None:  # access URLs, route, ports (eb_operator.operator.children.access)
            status |= reach
        await self.patch(view, status)
        self.announce(view, step)

    async def patch(self, view: ExecutionView, status: dict[str, Any]) -> ExecutionView:
        """Write ``status`` if the Execution is still the version ``view`` saw (else retry soon)."""
        ctx = self.ctx
        try:
            obj = await ctx.cluster.patch(
                EXECUTIONS,
                view.namespace,
                view.name,
                {"status": status},
                status=True,
                resource_version=str(view.rv),
            )
        except Conflict:
            raise Retry(0.2, "changed meanwhile") from None
        except NotFound:
            return view
        new = execution_view(obj)
        ctx.state.put(new)
        return new

    async def fail(self, view: ExecutionView, reason: str, message: str, interp: Interpretation) -> None:
        """FAILED, with the request's messages (why it cannot run) when there are any."""
        status = self.status(view, Phase.FAILED, reason, message)
        status["messages"] = list(interp.messages) or status.get("messages", [])
        await self.patch(view, status)
        self.announce(view, Step(phase=Phase.FAILED, reason=reason, message=message))

    def announce(self, view: ExecutionView, step: Step) -> None:
        """An Event on the Execution (a warning for a refusal or a failure) and a log line."""
        old = view.phase
        new = step.phase or old
        warning = step.refused or new == Phase.FAILED
        reason = "PhaseChangeRefused" if step.refused and step.phase is None else (step.reason or str(new))
        text = f"{old} -> {new}: {step.message}" if new != old else step.message
        if text:
            self.ctx.events.post(view.ref(), "Execution", reason, text, warning)
        if new is not None and new != old:
            self.ctx.metrics.transitions.labels(str(new)).inc()
        log.info(
            "%s",
            kv(msg="transition", execution=view.key, old=old, new=new, reason=reason, detail=step.message),
        )
