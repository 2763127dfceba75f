"""A small work queue in the style of client-go's: keys, not events.

Watch events only mark a key dirty; workers reconcile the key from the newest cached state. A
key is never processed by two workers at once; a key added while it is being processed is
processed again afterwards; failures are retried with exponential backoff; ``add_at`` schedules
a key for later (offer expiry, the start of preparation) and keeps only the earliest time.

A paused queue (a standby operator's) drops what it is given: the one that resumes it queues
every key again (the work is level-based, so nothing is lost by dropping a key).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger("eb_operator.operator.queue")


class Retry(Exception):
    """Raised by a handler to have its key processed again after ``delay`` seconds."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay} s")
        self.delay = delay


class WorkQueue(Generic[K]):
    def __init__(
        self,
        name: str,
        handler: Callable[[K], Awaitable[None]],
        workers: int,
        *,
        max_backoff: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._handler = handler
        self._n = workers
        self._max_backoff = max_backoff
        self._clock = clock
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: dict[K, float] = {}  # key -> monotonic time it was queued
        self._active: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[K, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.processed = 0
        self.failed = 0
        self.paused = False

    # -- producers -------------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self.paused:
            return
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued[key] = time.monotonic()
            self._queue.put_nowait(key)

    def add_at(self, key: K, when: float) -> None:
        """Process ``key`` at wall-clock time ``when`` (epoch seconds), or earlier if added before."""
        if self.paused:
            return
        delay = when - self._clock()
        if delay <= 0:
            self.add(key)
            return
        old = self._timers.get(key)
        if old is not None:
            if old[0] <= when:
                return
            old[1].cancel()
        handle = asyncio.get_running_loop().call_later(delay, self._fire, key)
        self._timers[key] = (when, handle)

    def add_after(self, key: K, delay: float) -> None:
        self.add_at(key, self._clock() + delay)

    def forget(self, key: K) -> None:
        """Drop a scheduled wake-up (the object is gone)."""
        old = self._timers.pop(key, None)
        if old is not None:
            old[1].cancel()
        self._failures.pop(key, None)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def pause(self) -> None:
        """Drop every queued key and timer, and every key added until :meth:`resume` (keys being
        processed finish)."""
        self.paused = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queued.clear()
        self._dirty.clear()
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def resume(self) -> None:
        self.paused = False

    # -- consumers -------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"{self.name}-{i}") for i in range(self._n)]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    async def _worker(self) -> None:
        while True:
            key = await self._queue.get()
            if key not in self._queued:
                continue  # dropped by a pause while it waited
            self._queued.pop(key, None)
            self._active.add(key)
            try:
                await self._handler(key)
                self._failures.pop(key, None)
                self.processed += 1
            except asyncio.CancelledError:
                raise
            except Retry as e:
                self.add_after(key, e.delay)
            except Exception:
                self.failed += 1
                n = self._failures.get(key, 0) + 1
                self._failures[key] = n
                delay = min(self._max_backoff, 0.25 * 2**n)
                log.exception("queue=%s key=%s attempt=%d retry_in=%.2fs", self.name, key, n, delay)
                self.add_after(key, delay)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)

    # -- health ----------------------------------------------------------------------------

    def oldest_wait(self) -> float:
        """Seconds the longest-waiting queued key has waited (0 when empty)."""
        if not self._queued:
            return 0.0
        return time.monotonic() - min(self._queued.values())

    def __len__(self) -> int:
        return len(self._queued)
