"""What the REST service needs from the API server: OfferSet and Execution reads and writes, waits on
watches, and TokenReview. Objects are plain dicts as the API server sends them.

Waiting is event-driven: one watch per kind and namespace per process (``_Watcher``) feeds every
waiter of that process, so a hundred concurrent POSTs share one connection instead of polling.
A waiter is registered before the write it waits on, the watch resumes from the last
resourceVersion it saw, and after a ``410 Gone`` it re-lists and re-checks every waiter, so no
event is lost. A waiter that times out checks the object once more with a GET before giving up.
Nothing here is state that matters: a restarted process re-lists and carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from eb_operator.cluster.convert import LABEL_OFFERSET, label_value
from eb_operator.cluster.kube import api_client
from eb_operator.model.crds import GROUP, MAX_GROUPS, VERSION

log = logging.getLogger(__name__)

OFFERSETS = "offersets"
EXECUTIONS = "executions"

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]


class StoreError(Exception):
    """The API server could not be used (unreachable, refused, or answered an unexpected error)."""


class NotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    """A write lost an optimistic-concurrency race (resourceVersion changed)."""


class InvalidError(StoreError):
    """422: the CRD's schema or CEL rules refused the object. ``causes`` are (field, message)."""

    def __init__(self, what: str, causes: list[tuple[str, str]]) -> None:
        super().__init__(what)
        self.causes = causes


@dataclass(frozen=True, slots=True)
class TokenReviewResult:
    authenticated: bool
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    error: str = ""


#: kubernetes_asyncio picks JSON-patch or strategic merge by default; custom objects need a merge patch.
_merge_patch: dict[str, Any] = {"_content_type": "application/merge-patch+json"}


def _causes(e: ApiException) -> list[tuple[str, str]]:
    try:
        details = json.loads(e.body or "{}").get("details") or {}
    except (ValueError, AttributeError):
        return []
    return [(str(c.get("field", "")), str(c.get("message", ""))) for c in details.get("causes") or []]


def _store_error(e: ApiException, what: str) -> StoreError:
    if e.status == 404:
        return NotFoundError(what)
    if e.status == 409:
        return ConflictError(what)
    if e.status == 422:
        return InvalidError(what, _causes(e))
    return StoreError(f"{what}: API server answered {e.status} {e.reason}")


async def _log_answered(resp: Any, what: str) -> bool:
    """Whether a pod-log response (read without preloading, so the client did not check its
    status) holds the log: False for 400 (the container is still waiting to start) and 404 (the
    Pod is gone); any other error status raises."""
    if resp.status in (400, 404):
        return False
    if resp.status >= 300:
        body = (await resp.read()).decode("utf-8", errors="replace")[:200]
        raise StoreError(f"{what}: API server answered {resp.status} {resp.reason}: {body}")
    return True


@dataclass(eq=False)
class _Waiter:
    name: str
    predicate: Predicate
    future: asyncio.Future[Obj]
    last: Obj | None = None  # the newest version of the object seen since the waiter was added

    def check(self, obj: Obj) -> None:
        self.last = obj
        if self.future.done():
            return
        try:
            ok = self.predicate(obj)
        except Exception:  # a predicate bug must not kill the watch
            log.exception("waiter predicate failed name=%s", self.name)
            ok = False
        if ok:
            self.future.set_result(obj)


@dataclass(eq=False)
class _Watcher:
    """One long-running watch on a kind in a namespace, dispatching events to waiters by name."""

    api: client.CustomObjectsApi
    namespace: str
    plural: str
    server_timeout: int = 240
    waiters: dict[str, list[_Waiter]] = field(default_factory=dict)
    # the newest version of recently changed objects, so an answer right after a change needs no GET;
    # a cache only (bounded, rebuilt by every list): a miss just means asking the API server
    recent: OrderedDict[str, Obj] = field(default_factory=OrderedDict)
    recent_size: int = 4096
    page_size: int = 500  # objects per LIST page
    task: asyncio.Task[None] | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"watch-{self.plural}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    def add(self, name: str, predicate: Predicate) -> _Waiter:
        w = _Waiter(name, predicate, asyncio.get_running_loop().create_future())
        self.waiters.setdefault(name, []).append(w)
        return w

    def remove(self, w: _Waiter) -> None:
        ws = self.waiters.get(w.name)
        if ws is not None:
            with contextlib.suppress(ValueError):
                ws.remove(w)
            if not ws:
                del self.waiters[w.name]

    def _offer(self, obj: Obj) -> None:
        name = obj.get("metadata", {}).get("name")
        self.recent[name] = obj
        self.recent.move_to_end(name)
        if len(self.recent) > self.recent_size:
            self.recent.popitem(last=False)
        for w in list(self.waiters.get(name, ())):
            w.check(obj)

    async def _list(self) -> str:
        """List a page at a time (the cache keeps only the newest ``recent_size`` anyway). Read
        whole, the 25,000 OfferSets of the scale benchmark's last step are the likely cause of
        this process's 587 MiB peak there (its RSS after the workload: 238 MiB), above the chart's
        512 MiB limit; a re-list after a watch's resourceVersion was compacted away would do the
        same at any time."""
        self.recent.clear()
        token = ""
        while True:
            page: dict[str, Any] = {"limit": self.page_size} | ({"_continue": token} if token else {})
            listed = await self.api.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, self.plural, _request_timeout=60, **page
            )
            for obj in listed.get("items", []):
                self._offer(obj)
            meta = listed.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                rv: str = meta["resourceVersion"]
                return rv

    async def _run(self) -> None:
        rv: str | None = None
        backoff = 0.2
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                    self.ready.set()
                rv = await self._watch(rv)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except ApiException as e:
                if e.status == 410:
                    log.info("watch %s: resourceVersion %s is too old; re-listing", self.plural, rv)
                    rv = None  # too old: re-list, re-check every waiter
                    continue
                log.warning("watch %s failed status=%s; retrying in %.1fs", self.plural, e.status, backoff)
            except Exception as e:  # connection reset, timeouts, ...
                log.warning("watch %s failed (%s); retrying in %.1fs", self.plural, e, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _watch(self, rv: str) -> str:
        resp = await self.api.list_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            self.plural,
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=self.server_timeout,
            _preload_content=False,
            _request_timeout=(10, self.server_timeout + 30),  # client > server (DESIGN: no deaf watches)
        )
        async with resp:
            if resp.status != 200:  # e.g. 404 while the CRD is missing: a status, not a stream
                text = (await resp.text())[:200]
                raise ApiException(status=resp.status, reason=text.strip() or "watch refused")
            while True:
                line = await resp.content.readline()
                if not line:
                    return rv
                event = json.loads(line)
                etype, obj = event.get("type"), event.get("object") or {}
                if etype == "ERROR":
                    raise ApiException(status=obj.get("code", 500), reason=obj.get("message", "watch error"))
                rv = obj.get("metadata", {}).get("resourceVersion", rv)
                if etype in ("ADDED", "MODIFIED"):
                    self._offer(obj)
                elif etype == "DELETED":
                    self.recent.pop(obj.get("metadata", {}).get("name"), None)


class RestStore:
    """OfferSets and Executions in one namespace, as the REST service sees them."""

    def __init__(self, api_client: client.ApiClient, namespace: str, request_timeout: float = 10.0) -> None:
        self._api_client = api_client
        self.namespace = namespace
        self.request_timeout = request_timeout
        self._co = client.CustomObjectsApi(api_client)
        self._authn = client.AuthenticationV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._offersets = _Watcher(self._co, namespace, OFFERSETS)
        self._executions = _Watcher(self._co, namespace, EXECUTIONS)

    @classmethod
    async def connect(cls, namespace: str, kubeconfig: str | None = None) -> RestStore:
        """In-cluster config when running in a Pod, else the kubeconfig (``KUBECONFIG`` or ~/.kube/config)."""
        cfg = client.Configuration()
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            await config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        cfg.connection_pool_maxsize = 64
        return cls(api_client(cfg), namespace)

    @classmethod
    def at(cls, host: str, namespace: str, request_timeout: float = 10.0) -> RestStore:
        """A store talking to the API server at ``host`` without credentials (tests, local proxies)."""
        cfg = client.Configuration(host=host)
        return cls(api_client(cfg), namespace, request_timeout)

    async def start(self) -> None:
        self._offersets.start()
        self._executions.start()

    async def close(self) -> None:
        await self._offersets.stop()
        await self._executions.stop()
        await self._api_client.close()

    @property
    def watching(self) -> bool:
        return self._offersets.ready.is_set() and self._executions.ready.is_set()

    # --- reads --------------------------------------------------------------------------------

    async def _get(self, plural: str, name: str) -> Obj | None:
        try:
            obj: Obj = await self._co.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=self.request_timeout
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise _store_error(e, f"get {plural}/{name}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"get {plural}/{name}: {e}") from e
        return obj

    async def get_offerset(self, name: str) -> Obj | None:
        return await self._get(OFFERSETS, name)

    async def get_execution(self, name: str) -> Obj | None:
        return await self._get(EXECUTIONS, name)

    async def list_executions(self, label_selector: str) -> list[Obj]:
        try:
            listed = await self._co.list_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                EXECUTIONS,
                label_selector=label_selector,
                _request_timeout=self.request_timeout,
            )
        except ApiException as e:
            raise _store_error(e, f"list executions {label_selector}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"list executions: {e}") from e
        items: list[Obj] = listed.get("items", [])
        return items

    def seen_offerset(self, name: str) -> Obj | None:
        """The newest version of an OfferSet this process's watch has seen, if any (no request).
        It may lag the API server by a watch event: callers use it only where the operator
        re-validates what they write, and confirm with a GET before they refuse anything."""
        return self._offersets.recent.get(name)

    def seen_execution(self, name: str) -> Obj | None:
        """As :meth:`seen_offerset`, for an Execution."""
        return self._executions.recent.get(name)

    async def find_execution(self, session_uuid: str) -> Obj | None:
        """The Execution whose session uuid is ``session_uuid``: offers and REST-made Executions are
        named by their uuid, so this is a GET by name (None for an offer not written as one)."""
        return await self.get_execution(session_uuid)

    async def offerset_executions(self, offerset_name: str) -> list[Obj]:
        """The offers of an OfferSet that were written as Executions (accepted or rejected)."""
        return await self.list_executions(f"{LABEL_OFFERSET}={label_value(offerset_name)}")

    # --- a session's log -----------------------------------------------------------------------

    async def read_log(self, namespace: str, pod: str, container: str, tail_lines: int | None) -> str | None:
        """A container's log (its last ``tail_lines`` lines; all of it without), None when the
        Pod is gone or its container never started."""
        tail: dict[str, Any] = {"tail_lines": tail_lines} if tail_lines is not None else {}
        try:
            resp: Any = await self._core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                **tail,
                _request_timeout=self.request_timeout,
                _preload_content=False,
            )
        except ApiException as e:
            if e.status in (400, 404):  # 400: the container is still waiting to start
                return None
            raise _store_error(e, f"log of pod {namespace}/{pod}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"log of pod {namespace}/{pod}: {e}") from e
        try:
            if not await _log_answered(resp, f"log of pod {namespace}/{pod}"):
                return None
            return str((await resp.read()).decode("utf-8", errors="replace"))
        finally:
            resp.release()

    @contextlib.asynccontextmanager
    async def follow_log(
        self, namespace: str, pod: str, container: str, tail_lines: int | None
    ) -> AsyncIterator[AsyncIterator[bytes] | None]:
        """A running container's log as it is written, until the container ends (None when the
        Pod is gone or its container has not started). The connection closes on leaving."""
        tail: dict[str, Any] = {"tail_lines": tail_lines} if tail_lines is not None else {}
        try:
            resp: Any = await self._core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                **tail,
                follow=True,
                _request_timeout=aiohttp.ClientTimeout(sock_connect=self.request_timeout),
                _preload_content=False,
            )
        except ApiException as e:
            if e.status in (400, 404):
                yield None
                return
            raise _store_error(e, f"log of pod {namespace}/{pod}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"log of pod {namespace}/{pod}: {e}") from e
        try:
            answered = await _log_answered(resp, f"log of pod {namespace}/{pod}")
            yield resp.content.iter_any() if answered else None
        finally:
            resp.close()

    async def get_configmap(self, name: str) -> Obj | None:
        """A ConfigMap of the sessions' namespace (a finished session's kept log), None if absent."""
        try:
            resp: Any = await self._core.read_namespaced_config_map(
                name, self.namespace, _request_timeout=self.request_timeout, _preload_content=False
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise _store_error(e, f"get configmap {name}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"get configmap {name}: {e}") from e
        try:
            found: Obj = await resp.json()
            return found
        finally:
            resp.release()

    async def ping(self) -> None:
        """A cheap read that proves the API server answers and the OfferSet CRD is served."""
        try:
            await self._co.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, OFFERSETS, limit=1, _request_timeout=5
            )
        except ApiException as e:
            raise _store_error(e, "list offersets") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"list offersets: {e}") from e

    # --- writes -------------------------------------------------------------------------------

    async def _create(self, plural: str, kind: str, name: str, body: Mapping[str, Any]) -> Obj:
        full = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, **body}
        full["metadata"] = {**body.get("metadata", {}), "name": name, "namespace": self.namespace}
        try:
            obj: Obj = await self._co.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, full, _request_timeout=self.request_timeout
            )
        except ApiException as e:
            raise _store_error(e, f"create {plural}/{name}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"create {plural}/{name}: {e}") from e
        return obj

    async def create_offerset(
        self,
        *,
        name: str,
        owner: str,
        request: Mapping[str, Any],
        annotations: Mapping[str, str],
        groups: Sequence[str] = (),
    ) -> Obj:
        """A new OfferSet owned by ``owner`` (in ``groups``) holding ``request`` (canonical
        ivoa-std shape)."""
        body = {
            "metadata": {"annotations": dict(annotations)},
            "spec": {"owner": owner, **_groups(groups), "request": dict(request)},
        }
        return await self._create(OFFERSETS, "OfferSet", name, body)

    async def create_execution(
        self,
        *,
        name: str,
        owner: str,
        request: Mapping[str, Any],
        annotations: Mapping[str, str],
        groups: Sequence[str] = (),
    ) -> Obj:
        """A direct-request Execution (no OfferSet): the operator finds a slot and accepts it."""
        body = {
            "metadata": {"annotations": dict(annotations)},
            "spec": {"owner": owner, **_groups(groups), "request": dict(request)},
        }
        return await self._create(EXECUTIONS, "Execution", name, body)

    async def create_offer_execution(self, body: Mapping[str, Any]) -> Obj:
        """An offer written as an Execution (``eb_operator.cluster.offer_status.offer_execution``);
        ConflictError when it already is one."""
        return await self._create(EXECUTIONS, "Execution", str(body["metadata"]["name"]), body)

    async def _delete(self, plural: str, name: str) -> None:
        try:
            await self._co.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, _request_timeout=self.request_timeout
            )
        except ApiException as e:
            if e.status != 404:
                raise _store_error(e, f"delete {plural}/{name}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"delete {plural}/{name}: {e}") from e

    async def delete_offerset(self, name: str) -> None:
        await self._delete(OFFERSETS, name)

    async def delete_execution(self, name: str) -> None:
        await self._delete(EXECUTIONS, name)

    async def patch_execution_spec(
        self, name: str, spec: Mapping[str, Any], resource_version: str | None = None
    ) -> Obj:
        """Merge-patch ``spec``; with ``resource_version``, only if the object has not moved since
        (ConflictError when it has)."""
        body: dict[str, Any] = {"spec": dict(spec)}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._patch_execution(name, body, _merge_patch["_content_type"])

    async def set_execution_annotation(self, name: str, key: str, value: str) -> None:
        """Merge-patch one annotation of an Execution (NotFoundError when it is gone)."""
        await self._patch_execution(
            name, {"metadata": {"annotations": {key: value}}}, _merge_patch["_content_type"]
        )

    async def take_execution_annotation(self, name: str, key: str, value: str) -> bool:
        """Remove an annotation if it still has ``value``: True for the one caller that removed it
        (a JSON patch that tests the value first), False when it changed or is gone."""
        path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
        ops = [{"op": "test", "path": path, "value": value}, {"op": "remove", "path": path}]
        try:
            await self._patch_execution(name, ops, "application/json-patch+json")
        except (NotFoundError, InvalidError):  # gone, or the test failed (422): not taken
            return False
        return True

    async def _patch_execution(self, name: str, body: Any, content_type: str) -> Obj:
        options: dict[str, Any] = {"_content_type": content_type}  # (not in the client's signature)
        try:
            obj: Obj = await self._co.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                EXECUTIONS,
                name,
                body,
                **options,
                _request_timeout=self.request_timeout,
            )
        except ApiException as e:
            raise _store_error(e, f"patch execution {name}") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"patch execution {name}: {e}") from e
        return obj

    # --- waits --------------------------------------------------------------------------------

    def watch_offerset(self, name: str, predicate: Predicate) -> Wait:
        return Wait(self._offersets, name, predicate, lambda: self.get_offerset(name))

    def watch_execution(self, name: str, predicate: Predicate) -> Wait:
        return Wait(self._executions, name, predicate, lambda: self.get_execution(name))

    # --- authentication -----------------------------------------------------------------------

    async def review_token(self, token: str, audiences: Sequence[str]) -> TokenReviewResult:
        review = client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=list(audiences) or None)
        )
        try:
            result = await self._authn.create_token_review(review, _request_timeout=self.request_timeout)
        except ApiException as e:
            raise _store_error(e, "token review") from e
        except (TimeoutError, OSError) as e:
            raise StoreError(f"token review: {e}") from e
        status = result.status
        if status is None or not status.authenticated or status.user is None:
            return TokenReviewResult(False, error=(status.error if status else "") or "")
        user = status.user
        return TokenReviewResult(True, user.username or "", user.uid or "", tuple(user.groups or ()))


def _groups(groups: Sequence[str]) -> dict[str, list[str]]:
    """``spec.groups``: the caller's groups, the first ``MAX_GROUPS`` (the CRD's bound)."""
    return {"groups": list(groups)[:MAX_GROUPS]} if groups else {}


class Wait:
    """Waits until an object satisfies a predicate. Use as an async context manager around the write
    that should cause it, so that the waiter exists before the write::

        async with store.watch_execution(name, done) as wait:
            await store.patch_execution_spec(...)
            obj = await wait.result(timeout)   # None on timeout
    """

    def __init__(
        self,
        watcher: _Watcher,
        name: str,
        predicate: Predicate,
        get: Callable[[], Any],
    ) -> None:
        self._watcher = watcher
        self._name = name
        self._predicate = predicate
        self._get = get
        self._waiter: _Waiter | None = None

    async def __aenter__(self) -> Wait:
        self._waiter = self._watcher.add(self._name, self._predicate)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._waiter is not None:
            self._watcher.remove(self._waiter)

    async def check_now(self) -> None:
        """Look at the object once with a GET (for waits on something that may already be true)."""
        assert self._waiter is not None, "use Wait as an async context manager"
        obj = await self._get()
        if obj is not None:
            self._waiter.check(obj)

    def check_recent(self) -> bool:
        """Check the version this process's watch saw last, if any; True if that satisfies."""
        assert self._waiter is not None, "use Wait as an async context manager"
        seen = self._watcher.recent.get(self._name)
        if seen is not None:
            self._waiter.check(seen)
        return self._waiter.future.done()

    def recheck(self) -> None:
        """Check the newest version seen again (after the predicate's inputs changed)."""
        assert self._waiter is not None, "use Wait as an async context manager"
        if self._waiter.last is not None:
            self._waiter.check(self._waiter.last)

    async def result(self, within: float) -> Obj | None:
        """The object once the predicate holds; None if it does not within ``within`` seconds."""
        assert self._waiter is not None, "use Wait as an async context manager"
        try:
            return await asyncio.wait_for(asyncio.shield(self._waiter.future), max(within, 0.0))
        except TimeoutError:
            obj: Obj | None = await self._get()  # the watch may lag: one last look
            if obj is not None and self._predicate(obj):
                return obj
            return None
