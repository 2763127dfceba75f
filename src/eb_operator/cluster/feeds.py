"""Feeds: one kind of object followed from a LIST, then by a WATCH from that LIST's resourceVersion.

The operator reads every object once at start (:meth:`Feed.load`, a page at a time) and then
only changes: the watch starts from the list's resourceVersion, so nothing between the two is
missed and nothing is listed twice. Each watch request ends after ``server_timeout`` seconds (the
client gives up ``client_timeout`` seconds after it started if the server goes silent); the next
one resumes from the last resourceVersion seen (bookmarks keep it current while nothing
changes). Only when that version has been compacted away (410 Gone) is the kind listed again,
and objects that are no longer there are reported deleted.

A feed hands every object to one callback, ``on_event(obj, deleted)``, in the order the API
server sent them, from its own task. A deleted object the feed only knows by key (from a re-list)
is reported as ``{"metadata": {"namespace": ..., "name": ...}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eb_operator.cluster.crs import ApiError, Cluster

log = logging.getLogger("eb_operator.cluster")
Obj = dict[str, Any]
OnEvent = Callable[[Obj, bool], None]


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


@dataclass
class FeedStats:
    """What a feed did, for metrics and the liveness probe (monotonic times)."""

    events: int = 0  # objects delivered (listed, added, modified, deleted)
    watches: int = 0  # watch requests made (each ends after server_timeout)
    relists: int = 0  # lists after the resourceVersion expired
    errors: int = 0  # watch requests that failed (resumed after a backoff), objects the consumer failed on
    last_event: float = field(default_factory=time.monotonic)  # an object or a bookmark arrived
    last_contact: float = field(default_factory=time.monotonic)  # the API server answered


def _key(meta: Mapping[str, Any]) -> str:
    return f"{meta.get('namespace') or ''}/{meta.get('name')}"


def _tombstone(key: str) -> Obj:
    namespace, name = key.split("/", 1)
    return {"metadata": {"namespace": namespace or None, "name": name}}


async def _lines(content: Any, chunk: int = 1 << 16) -> AsyncIterator[bytes]:
    """The lines of a streamed body, of any length (aiohttp's readline stops at 64 KiB)."""
    buffer = b""
    async for data in content.iter_chunked(chunk):
        buffer += data
        start = 0
        index = buffer.find(b"\n")
        while index >= 0:
            if index > start:
                yield buffer[start:index]
            start = index + 1
            index = buffer.find(b"\n", start)
        buffer = buffer[start:]
    if buffer.strip():
        yield buffer


class Feed:
    def __init__(
        self,
        cluster: Cluster,
        path: str,
        on_event: OnEvent,
        *,
        name: str | None = None,
        query: Mapping[str, str] | None = None,
        server_timeout: int = 25,
        client_timeout: int = 35,
        page_size: int = 500,
    ) -> None:
        self.cluster = cluster
        self.path = path
        self.on_event = on_event
        self.name = name or path.rsplit("/", 1)[-1]
        self.query = dict(query or {})
        self.server_timeout = server_timeout
        self.client_timeout = client_timeout
        self.page_size = page_size
        self.stats = FeedStats()
        self.resource_version: str | None = None
        self._known: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    # -- listing ---------------------------------------------------------------------------

    async def load(self) -> int:
        """List every object a page at a time, handing each to ``on_event``; objects known before
        and not listed now are reported deleted. Returns how many were listed."""
        seen: set[str] = set()
        token = ""
        rv = ""
        while True:
            query = {**self.query, "limit": str(self.page_size)} | ({"continue": token} if token else {})
            page = await self.cluster.list_raw(self.path, **query)
            meta = page.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            for obj in page.get("items") or []:
                seen.add(_key(obj.get("metadata") or {}))
                self._deliver(obj, False)
            del page
            token = meta.get("continue") or ""
            if not token:
                break
        for key in self._known - seen:
            self.on_event(_tombstone(key), True)
        self._known = seen
        self.resource_version = rv
        self.stats.last_contact = self.stats.last_event = time.monotonic()
        return len(seen)

    def _deliver(self, obj: Obj, deleted: bool) -> None:
        key = _key(obj.get("metadata") or {})
        if deleted:
            self._known.discard(key)
        else:
            self._known.add(key)
        self.stats.events += 1
        try:
            self.on_event(obj, deleted)
        except Exception:  # one object the consumer cannot take must not stop the feed for all
            self.stats.errors += 1
            log.exception("feed=%s object=%s: the consumer failed on it; skipped", self.name, key)

    # -- watching --------------------------------------------------------------------------

    def start(self) -> None:
        """Follow changes from the loaded resourceVersion (``load`` first)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"feed-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if self.resource_version is None:
                    self.stats.relists += 1
                    await self.load()
                await self._watch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Expired:
                log.info(
                    "feed=%s resourceVersion=%s expired: listing again", self.name, self.resource_version
                )
                self.resource_version = None
            except Exception as e:  # connection reset, timeouts, a 5xx: resume from the same version
                self.stats.errors += 1
                log.warning("feed=%s watch failed (%s); resuming in %.1fs", self.name, e, backoff)
                await asyncio.sleep(backoff)  # a backoff between attempts, not a synchronisation
                backoff = min(backoff * 2, 5.0)

    async def _watch(self) -> None:
        query = {
            **self.query,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": str(self.resource_version),
            "timeoutSeconds": str(self.server_timeout),
        }
        self.stats.watches += 1
        resp = await self.cluster.stream_raw(self.path, query, float(self.client_timeout))
        try:
            if resp.status == 410:
                raise Expired()
            if resp.status != 200:
                raise ApiError(int(resp.status), str(resp.reason), (await resp.text())[:300])
            self.stats.last_contact = time.monotonic()
            async for line in _lines(resp.content):
                event = json.loads(line)
                self.stats.last_contact = self.stats.last_event = time.monotonic()
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired()
                    raise ApiError(
                        int(obj.get("code") or 500), str(obj.get("reason")), str(obj.get("message"))
                    )
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if rv:
                    self.resource_version = str(rv)
                if etype in ("ADDED", "MODIFIED"):
                    self._deliver(obj, False)
                elif etype == "DELETED":
                    self._deliver(obj, True)
            self.stats.last_contact = time.monotonic()
        finally:
            resp.release()
