"""A session's log for its owner: what its workload container printed, as plain text.

Read from the session's Pod while it exists (the operator keeps the finished Pod until retention
deletes the session, or its storage goes), else from the copy the operator keeps in a ConfigMap
beside the Execution when the session ends (``eb_operator.operator.finishing``): readable as long
as the session is. ``follow`` streams a running container's log until it ends; for a session whose
container has not started yet it first waits (on the Execution's watch) until it has, or the
session ended, at most ``log_wait_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from eb_operator.api import views
from eb_operator.api.auth import Caller
from eb_operator.api.service import BrokerService
from eb_operator.cluster.convert import recorded_phase
from eb_operator.cluster.rest_store import Obj
from eb_operator.engine.types import Phase
from eb_operator.model import FINAL_PHASES

MAIN = "main"
LOG_KEY = "main.log"
#: Phases in which the workload container may have printed something.
STARTED = frozenset({Phase.READY, Phase.RUNNING, Phase.RELEASING}) | FINAL_PHASES


def tail_of(text: str, lines: int | None) -> str:
    """The last ``lines`` lines of ``text`` (all of it for None)."""
    if lines is None:
        return text
    if lines <= 0:
        return ""
    parts = text.splitlines(keepends=True)
    return "".join(parts[-lines:])


class SessionLogs:
    def __init__(self, service: BrokerService) -> None:
        self.service = service
        self.store = service.store

    async def text(self, caller: Caller, uuid: str, tail: int | None) -> str:
        """The log as it is now (404 for a session that is not the caller's)."""
        ref = await self.service.find_session(caller, uuid)
        return await self._now(ref.execution, tail)

    async def _now(self, execution: Obj, tail: int | None) -> str:
        namespace, pod = views.pod_of(execution)
        text = await self.store.read_log(namespace, pod, MAIN, tail)
        if text is not None:
            return text
        return tail_of(await self._kept(execution), tail)

    async def _kept(self, execution: Obj) -> str:
        """The copy the operator kept when the session ended ("" when there is none)."""
        name = (execution.get("status") or {}).get("logs")
        if not name:
            return ""
        found = await self.store.get_configmap(str(name))
        return str(((found or {}).get("data") or {}).get(LOG_KEY) or "")

    async def follow(self, caller: Caller, uuid: str, tail: int | None) -> AsyncIterator[bytes]:
        """The log as it is written while the session runs. Checks the caller first (404 before any
        byte is sent); returns the stream."""
        ref = await self.service.find_session(caller, uuid)
        return self._follow(ref.execution, tail)

    async def _follow(self, execution: Obj, tail: int | None) -> AsyncIterator[bytes]:
        name = execution["metadata"]["name"]
        deadline = time.monotonic() + self.service.settings.log_wait_seconds
        current: Obj | None = execution
        while current is not None:
            phase = recorded_phase(current)
            if phase in FINAL_PHASES:  # nothing runs any more: what there is, once
                yield (await self._now(current, tail)).encode()
                return
            if phase in STARTED:
                namespace, pod = views.pod_of(current)
                async with self.store.follow_log(namespace, pod, MAIN, tail) as chunks:
                    if chunks is not None:
                        async for chunk in chunks:
                            yield chunk
                        return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            current = await self._next(name, phase, left)

    async def _next(self, name: str, seen: Phase | None, within: float) -> Obj | None:
        """The Execution once its phase changed from ``seen`` (or after ``within`` seconds, as it
        is then); None when it is gone."""

        def moved(obj: Obj) -> bool:
            return recorded_phase(obj) != seen

        async with self.store.watch_execution(name, moved) as wait:
            await wait.check_now()
            found = await wait.result(min(within, 30.0))
        return found if found is not None else await self.store.get_execution(name)
