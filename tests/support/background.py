"""A watch (or any follower) running beside a block of test or benchmark code."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object]) -> AsyncIterator[None]:
    """``work`` runs as a task while the block runs; cancelled and awaited when the block ends,
    so no watch outlives the test or benchmark step that started it (an exception it raised
    other than the cancellation comes out here)."""
    task = asyncio.create_task(work)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
