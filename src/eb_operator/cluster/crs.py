"""Reading and writing the broker's custom resources, Pods and Events (async, kubernetes_asyncio).

The operator and the REST API both go through :class:`Cluster`. Writes that depend on what was
read carry the ``resourceVersion`` they were based on (optimistic concurrency): the API server
answers 409 Conflict if the object changed meanwhile, and the caller re-reads and decides again.

Errors are :class:`ApiError` with the HTTP status; ``NotFound`` and ``Conflict`` are subclasses
so callers can catch exactly what they handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from eb_operator.cluster.kube import ClientSettings, make_api_client
from eb_operator.model.crds import API_VERSION, GROUP, VERSION
from eb_operator.model.times import format_instant

Obj = dict[str, Any]
MERGE = "application/merge-patch+json"
log = logging.getLogger("eb_operator.cluster")

EXECUTIONS = "executions"
OFFERSETS = "offersets"
EXECUTABLES = "executables"
PLATFORMS = "executionplatforms"
BROKERPEERS = "brokerpeers"


class ApiError(Exception):
    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"{status} {reason}: {body[:500]}")
        self.status = status
        self.reason = reason
        self.body = body


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: AlreadyExists on create, or a resourceVersion precondition failed on update."""


class Invalid(ApiError):
    """422: the API server's schema or CEL validation refused the object."""


def _error(status: int, reason: str, body: str) -> ApiError:
    kind = {404: NotFound, 409: Conflict, 422: Invalid}.get(status, ApiError)
    return kind(status, reason, body)


def _wrap(e: ApiException) -> ApiError:
    return _error(int(e.status or 0), str(e.reason), str(e.body or ""))


async def _json(resp: Any) -> Obj:
    """The JSON body of a raw (not preloaded) response; ApiError for a non-2xx status."""
    try:
        if not 200 <= resp.status <= 299:
            raise _error(int(resp.status), str(resp.reason), await resp.text())
        return await resp.json()  # type: ignore[no-any-return]
    finally:
        resp.release()


def cr_path(plural: str) -> str:
    """The cluster-wide list path of one of the broker's resources."""
    return f"/apis/{GROUP}/{VERSION}/{plural}"


class Cluster:
    """Typed access to the API server for the operator and the REST API."""

    def __init__(self, api: client.ApiClient, settings: ClientSettings | None = None) -> None:
        self.api: Any = api
        self.settings = settings or ClientSettings()
        # The generated clients' signatures take model objects; we pass and get plain dicts.
        self.custom: Any = client.CustomObjectsApi(api)
        self.core: Any = client.CoreV1Api(api)
        self.rbac: Any = client.RbacAuthorizationV1Api(api)
        self.networking: Any = client.NetworkingV1Api(api)

    @classmethod
    async def connect(cls, settings: ClientSettings | None = None) -> Cluster:
        settings = settings or ClientSettings()
        return cls(await make_api_client(settings), settings)

    async def close(self) -> None:
        await self.api.close()

    @property
    def _t(self) -> float:
        return self.settings.request_timeout

    # -- custom resources ------------------------------------------------------------------

    async def create(self, plural: str, namespace: str | None, body: Mapping[str, Any]) -> Obj:
        try:
            if namespace is None:
                return await self.custom.create_cluster_custom_object(  # type: ignore[no-any-return]
                    GROUP, VERSION, plural, body, _request_timeout=self._t
                )
            return await self.custom.create_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, body, _request_timeout=self._t
            )
        except ApiException as e:
            raise _wrap(e) from None

    async def get(self, plural: str, namespace: str | None, name: str) -> Obj:
        try:
            if namespace is None:
                return await self.custom.get_cluster_custom_object(  # type: ignore[no-any-return]
                    GROUP, VERSION, plural, name, _request_timeout=self._t
                )
            return await self.custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, name, _request_timeout=self._t
            )
        except ApiException as e:
            raise _wrap(e) from None

    async def list(self, plural: str, namespace: str | None = None, label_selector: str | None = None) -> Obj:
        kw: dict[str, Any] = {"_request_timeout": max(self._t, 120.0)}
        if label_selector:
            kw["label_selector"] = label_selector
        try:
            if namespace is None:
                return await self.custom.list_cluster_custom_object(  # type: ignore[no-any-return]
                    GROUP, VERSION, plural, **kw
                )
            return await self.custom.list_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, **kw
            )
        except ApiException as e:
            raise _wrap(e) from None

    async def list_in(self, plural: str, namespace: str) -> Obj:
        """Every object of a namespaced kind in one namespace (for callers granted no more)."""
        try:
            return await self.custom.list_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, _request_timeout=self._t
            )
        except ApiException as e:
            raise _wrap(e) from None

    async def patch_status_in(self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]) -> Obj:
        """A JSON merge patch of a namespaced object's status (for callers granted no more)."""
        kw: dict[str, Any] = {"_request_timeout": self._t, "_content_type": MERGE}
        try:
            return await self.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, name, dict(patch), **kw
            )
        except ApiException as e:
            raise _wrap(e) from None

    async def patch(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        status: bool = False,
        resource_version: str | None = None,
    ) -> Obj:
        """A JSON merge patch of the object (or of its status subresource), optionally guarded
        by ``resource_version`` (409 Conflict if the object changed since)."""
        body: dict[str, Any] = dict(patch)
        if resource_version is not None:
            body["metadata"] = {**body.get("metadata", {}), "resourceVersion": resource_version}
        kw: dict[str, Any] = {"_request_timeout": self._t, "_content_type": MERGE}
        try:
            c = self.custom
            if namespace is None:
                fn = c.patch_cluster_custom_object_status if status else c.patch_cluster_custom_object
                return await fn(GROUP, VERSION, plural, name, body, **kw)  # type: ignore[no-any-return]
            fn = c.patch_namespaced_custom_object_status if status else c.patch_namespaced_custom_object
            return await fn(GROUP, VERSION, namespace, plural, name, body, **kw)  # type: ignore[no-any-return]
        except ApiException as e:
            raise _wrap(e) from None

    async def delete(self, plural: str, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete (its dependents in the background, by their ownerReferences); False when it was
        already gone. With ``uid``, only that very object: another made since under the same name
        answers 409 Conflict."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, body=body, _request_timeout=self._t
            )
        except ApiException as e:
            if e.status == 404:
                return False
            raise _wrap(e) from None
        return True

    # -- core objects ----------------------------------------------------------------------

    async def create_pod(self, namespace: str, body: Mapping[str, Any]) -> Obj:
        try:
            resp = await self.core.create_namespaced_pod(
                namespace, body, _request_timeout=self._t, _preload_content=False
            )
            return await _json(resp)
        except ApiException as e:
            raise _wrap(e) from None

    async def get_pod(self, namespace: str, name: str) -> Obj:
        try:
            resp = await self.core.read_namespaced_pod(
                name, namespace, _request_timeout=self._t, _preload_content=False
            )
            return await _json(resp)
        except ApiException as e:
            raise _wrap(e) from None

    async def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> bool:
        """Delete a Pod; False when it was already gone."""
        try:
            await self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=grace_seconds, _request_timeout=self._t
            )
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise _wrap(e) from None

    async def list_raw(self, path: str, **query: str) -> Obj:
        """GET a list at an API path (e.g. /api/v1/nodes) as plain JSON, without model decoding."""
        try:
            resp = await self.api.call_api(
                path,
                "GET",
                query_params=list(query.items()),
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=max(self._t, 120.0),
            )
            return await _json(resp[0] if isinstance(resp, tuple) else resp)
        except ApiException as e:
            raise _wrap(e) from None

    async def stream_raw(self, path: str, query: Mapping[str, str], total_seconds: float) -> Any:
        """Start a streamed GET (a watch) at an API path; the caller reads ``.content`` and must
        ``.release()`` the response. The whole request ends after ``total_seconds`` at most (a
        watch whose server went silent is given up, never left deaf)."""
        timeout = aiohttp.ClientTimeout(total=total_seconds, connect=10, sock_connect=10)
        try:
            resp = await self.api.call_api(
                path,
                "GET",
                query_params=list(query.items()),
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        except ApiException as e:
            raise _wrap(e) from None
        return resp[0] if isinstance(resp, tuple) else resp

    async def post_event(
        self,
        obj: Mapping[str, Any],
        kind: str,
        reason: str,
        message: str,
        warning: bool = False,
        api_version: str = API_VERSION,
    ) -> None:
        """A core/v1 Event about ``obj`` (a dict with metadata name, namespace, uid)."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        now = format_instant(int(time.time()))
        body = {
            "metadata": {"generateName": f"{meta['name'][:200]}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": api_version,
                "kind": kind,
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": "eb-operator"},
            "reportingComponent": "eb-operator",
            "reportingInstance": "eb-operator",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            resp = await self.core.create_namespaced_event(
                namespace, body, _request_timeout=self._t, _preload_content=False
            )
            await _json(resp)
        except ApiException as e:
            raise _wrap(e) from None

    # -- watching --------------------------------------------------------------------------

    async def watch_object(
        self,
        plural: str,
        namespace: str,
        name: str,
        until: Callable[[Obj], bool],
        seconds: float,
    ) -> Obj:
        """Wait until ``until(obj)`` holds for the named object; TimeoutError otherwise.

        Reads once, then watches from that resourceVersion (server timeout shorter than the
        client's), so a change between the read and the watch is never missed.
        """
        deadline = asyncio.get_running_loop().time() + seconds
        obj = await self.get(plural, namespace, name)
        while not until(obj):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"{plural} {namespace}/{name}: condition not met in {seconds} s")
            rv = obj["metadata"]["resourceVersion"]
            async for event in self._watch(plural, namespace, name, rv, left):
                if event["type"] == "DELETED":
                    raise NotFound(404, "NotFound", f"{plural} {namespace}/{name} was deleted")
                obj = dict(event["object"])
                if until(obj):
                    return obj
            else:
                obj = await self.get(plural, namespace, name)
        return obj

    async def _watch(
        self, plural: str, namespace: str, name: str, rv: str, left: float
    ) -> AsyncIterator[dict[str, Any]]:
        w = watch.Watch()
        server = max(1, int(min(left, 60)))
        try:
            async with asyncio.timeout(min(left, server + 5)):
                async for event in w.stream(
                    self.custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    field_selector=f"metadata.name={name}",
                    resource_version=rv,
                    timeout_seconds=server,
                    allow_watch_bookmarks=False,
                ):
                    if event["type"] == "ERROR":
                        return
                    yield event
        except (TimeoutError, ApiException):
            return  # expired (410 Gone), or the server ended the watch: the caller reads again
        finally:
            with contextlib.suppress(Exception):
                await w.close()
