"""Kubernetes Events and key=value logs for what the operator does.

Events are posted in the background (a bounded queue, a few workers), so a slow or failing
Event write never delays a reconcile; when the queue is full the Event is logged and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster.crs import Cluster

log = logging.getLogger("eb_operator.operator")


def kv(**fields: Any) -> str:
    """``key=value`` pairs; values with spaces are quoted."""
    parts = []
    for k, v in fields.items():
        if v is None:
            continue
        text = str(v)
        parts.append(f"{k}={text!r}" if (" " in text or not text) else f"{k}={text}")
    return " ".join(parts)


class EventPoster:
    def __init__(self, cluster: Cluster, workers: int = 2, capacity: int = 10_000) -> None:
        self._cluster = cluster
        self._queue: asyncio.Queue[tuple[dict[str, Any], str, str, str, bool]] = asyncio.Queue(capacity)
        self._n = workers
        self._tasks: list[asyncio.Task[None]] = []
        self.posted = 0

    def post(
        self, obj: Mapping[str, Any], kind: str, reason: str, message: str, warning: bool = False
    ) -> None:
        meta = obj["metadata"]
        ref = {"metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid")}}
        try:
            self._queue.put_nowait((ref, kind, reason, message, warning))
        except asyncio.QueueFull:
            log.warning(
                "%s", kv(msg="event dropped", kind=kind, obj=f"{meta.get('namespace')}/{meta['name']}")
            )

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"events-{i}") for i in range(self._n)]

    async def stop(self, drain_seconds: float = 2.0) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                await self._queue.join()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            ref, kind, reason, message, warning = await self._queue.get()
            try:
                await self._cluster.post_event(ref, kind, reason, message, warning)
                self.posted += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # an Event is best effort
                log.debug("%s", kv(msg="event not posted", reason=reason, error=e))
            finally:
                self._queue.task_done()
