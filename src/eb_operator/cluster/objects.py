"""Objects a session needs besides its Pod: PersistentVolumeClaims, Secrets, Services, ConfigMaps
(a copy of its log), its Pods' logs, the route objects that bring people to it (Ingresses,
HTTPRoutes, Traefik Middlewares); and an owner's namespace with its RoleBinding and NetworkPolicy.

Create-if-absent by deterministic name (409 = already there, the existing object is returned),
NotFound on read is None, NotFound on delete is success: safe to run twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from eb_operator.cluster.crs import MERGE, ApiError, Cluster, Conflict, NotFound, _wrap
from eb_operator.cluster.crs import _json as crs_json

Obj = dict[str, Any]

_KINDS = {
    "PersistentVolumeClaim": "persistent_volume_claim",
    "Secret": "secret",
    "Service": "service",
    "RoleBinding": "role_binding",
    "NetworkPolicy": "network_policy",
    "ConfigMap": "config_map",
}


def _api(cluster: Cluster, kind: str) -> Any:
    if kind == "RoleBinding":
        return cluster.rbac
    if kind == "NetworkPolicy":
        return cluster.networking
    return cluster.core


def _method(cluster: Cluster, verb: str, kind: str) -> Any:
    return getattr(_api(cluster, kind), f"{verb}_namespaced_{_KINDS[kind]}")


async def _json(resp: Any) -> Obj:
    """The JSON body of a raw response; ApiError for a non-2xx status (the client checks the
    status only when it preloads the body, so a raw 404 or 409 would otherwise read as an object)."""
    return await crs_json(resp)


async def get(cluster: Cluster, kind: str, namespace: str, name: str) -> Obj | None:
    try:
        resp = await _method(cluster, "read", kind)(
            name, namespace, _request_timeout=cluster.settings.request_timeout, _preload_content=False
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise _wrap(e) from None
    try:
        return await _json(resp)
    except NotFound:
        return None


async def create_if_absent(cluster: Cluster, body: Mapping[str, Any]) -> tuple[Obj, bool]:
    """Create ``body`` (a PVC, Secret or Service); ``(object, created)``, the existing object when
    one of that name is already there."""
    meta = body["metadata"]
    try:
        resp = await _method(cluster, "create", str(body["kind"]))(
            meta["namespace"], body, _request_timeout=cluster.settings.request_timeout, _preload_content=False
        )
        return await _json(resp), True
    except ApiException as e:
        if e.status != 409:
            raise _wrap(e) from None
        error: ApiError = _wrap(e)
    except Conflict as e:  # 409 from the raw response: one of that name is there already
        error = e
    found = await get(cluster, str(body["kind"]), meta["namespace"], meta["name"])
    if found is None:  # deleted between the two calls: the next reconcile creates it again
        raise error
    return found, False


async def replace_network_policy(cluster: Cluster, body: Mapping[str, Any], resource_version: str) -> None:
    """Replace a NetworkPolicy (the platform changed its rules) if it is still the version seen."""
    meta = body["metadata"]
    full = {**body, "metadata": {**meta, "resourceVersion": resource_version}}
    try:
        await cluster.networking.replace_namespaced_network_policy(
            meta["name"], meta["namespace"], full, _request_timeout=cluster.settings.request_timeout
        )
    except ApiException as e:
        raise _wrap(e) from None


async def list_claims(cluster: Cluster, label_selector: str) -> list[Obj]:
    """PersistentVolumeClaims of every namespace matching ``label_selector``."""
    try:
        resp = await cluster.core.list_persistent_volume_claim_for_all_namespaces(
            label_selector=label_selector,
            _request_timeout=cluster.settings.request_timeout,
            _preload_content=False,
        )
    except ApiException as e:
        raise _wrap(e) from None
    return list((await _json(resp)).get("items") or [])


async def annotate_claim(cluster: Cluster, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
    try:
        await cluster.core.patch_namespaced_persistent_volume_claim(
            name,
            namespace,
            {"metadata": {"annotations": dict(annotations)}},
            _content_type=MERGE,
            _request_timeout=cluster.settings.request_timeout,
        )
    except ApiException as e:
        if e.status != 404:
            raise _wrap(e) from None


async def patch_claim(
    cluster: Cluster,
    namespace: str,
    name: str,
    annotations: Mapping[str, str | None],
    resource_version: str | None = None,
) -> Obj:
    """Merge ``annotations`` into a PVC (None removes one), only if it is still at
    ``resource_version`` when given (else Conflict); the claim as it is afterwards."""
    meta: dict[str, Any] = {"annotations": dict(annotations)}
    if resource_version:
        meta["resourceVersion"] = resource_version
    try:
        resp = await cluster.core.patch_namespaced_persistent_volume_claim(
            name,
            namespace,
            {"metadata": meta},
            _content_type=MERGE,
            _request_timeout=cluster.settings.request_timeout,
            _preload_content=False,
        )
    except ApiException as e:
        raise _wrap(e) from None
    return await _json(resp)


async def read_pod_log(
    cluster: Cluster, namespace: str, name: str, container: str, tail_lines: int | None = None
) -> str | None:
    """A container's log (its last ``tail_lines`` lines), None when the Pod is gone."""
    try:
        resp = await cluster.core.read_namespaced_pod_log(
            name,
            namespace,
            container=container,
            tail_lines=tail_lines,
            _request_timeout=cluster.settings.request_timeout,
            _preload_content=False,
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise _wrap(e) from None
    try:
        return (await resp.read()).decode("utf-8", errors="replace")  # type: ignore[no-any-return]
    finally:
        resp.release()


async def delete_claim(cluster: Cluster, namespace: str, name: str) -> bool:
    """Delete a PVC; False when it was already gone."""
    try:
        await cluster.core.delete_namespaced_persistent_volume_claim(
            name, namespace, _request_timeout=cluster.settings.request_timeout
        )
    except ApiException as e:
        if e.status == 404:
            return False
        raise _wrap(e) from None
    return True


async def read_secret_data(cluster: Cluster, namespace: str, name: str) -> Mapping[str, str] | None:
    """The ``data`` of a Secret (base64 values), None when it does not exist."""
    found = await get(cluster, "Secret", namespace, name)
    return None if found is None else dict(found.get("data") or {})


# --- route objects ----------------------------------------------------------------------------

#: (API group, version, plural) of the route objects, by kind. A kind whose API the cluster does not
#: serve (no Gateway API, no Traefik CRDs) answers 404 like a missing object.
ROUTE_KINDS = {
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "HTTPRoute": ("gateway.networking.k8s.io", "v1", "httproutes"),
    "Middleware": ("traefik.io", "v1alpha1", "middlewares"),
}


async def _route_call(
    cluster: Cluster, verb: str, kind: str, namespace: str, *args: Any, **kwargs: Any
) -> Obj:
    group, version, plural = ROUTE_KINDS[kind]
    method = getattr(cluster.custom, f"{verb}_namespaced_custom_object")
    try:
        found: Obj = await method(
            group,
            version,
            namespace,
            plural,
            *args,
            _request_timeout=cluster.settings.request_timeout,
            **kwargs,
        )
    except ApiException as e:
        raise _wrap(e) from None
    return found


async def put_route(cluster: Cluster, body: Mapping[str, Any]) -> tuple[Obj, bool]:
    """Create a route object, or adopt the one of that name: replace it with ``body`` (an object
    left by an earlier attempt, or made by hand, becomes exactly what the session needs, nothing
    of it kept). ``(object, created)``; a change between the read and the replace is a Conflict."""
    kind, meta = str(body["kind"]), body["metadata"]
    try:
        return await _route_call(cluster, "create", kind, meta["namespace"], body), True
    except ApiError as e:
        if e.status != 409:
            raise
    found = await _route_call(cluster, "get", kind, meta["namespace"], meta["name"])
    version = (found.get("metadata") or {}).get("resourceVersion")
    adopted = {**body, "metadata": {**meta, "resourceVersion": version}}
    return await _route_call(cluster, "replace", kind, meta["namespace"], meta["name"], adopted), False


async def delete_route(cluster: Cluster, kind: str, namespace: str, name: str) -> bool:
    """Delete a route object; False when it was not there (or its kind is not served)."""
    try:
        await _route_call(cluster, "delete", kind, namespace, name)
    except NotFound:
        return False
    return True


async def delete_service(cluster: Cluster, namespace: str, name: str) -> bool:
    """Delete a Service; False when it was already gone."""
    try:
        await cluster.core.delete_namespaced_service(
            name, namespace, _request_timeout=cluster.settings.request_timeout
        )
    except ApiException as e:
        if e.status == 404:
            return False
        raise _wrap(e) from None
    return True


# --- an owner's namespace ---------------------------------------------------------------------


async def create_namespace(cluster: Cluster, body: Mapping[str, Any]) -> bool:
    """Create a Namespace; False when one of that name is already there."""
    try:
        await cluster.core.create_namespace(body, _request_timeout=cluster.settings.request_timeout)
    except ApiException as e:
        if e.status == 409:
            return False
        raise _wrap(e) from None
    return True


async def list_namespaces(cluster: Cluster, label_selector: str) -> list[Obj]:
    try:
        resp = await cluster.core.list_namespace(
            label_selector=label_selector,
            _request_timeout=cluster.settings.request_timeout,
            _preload_content=False,
        )
    except ApiException as e:
        raise _wrap(e) from None
    return list((await _json(resp)).get("items") or [])


async def get_namespace(cluster: Cluster, name: str) -> Obj | None:
    try:
        resp = await cluster.core.read_namespace(
            name, _request_timeout=cluster.settings.request_timeout, _preload_content=False
        )
    except ApiException as e:
        if e.status == 404:
            return None
        raise _wrap(e) from None
    try:
        return await _json(resp)
    except NotFound:
        return None


async def delete_namespace(cluster: Cluster, name: str, uid: str) -> bool:
    """Delete a Namespace if it is still the one seen (by uid); False when it was gone or is
    another one of the same name."""
    try:
        await cluster.core.delete_namespace(
            name, body={"preconditions": {"uid": uid}}, _request_timeout=cluster.settings.request_timeout
        )
    except ApiException as e:
        if e.status in (404, 409):
            return False
        raise _wrap(e) from None
    return True


async def any_claim(cluster: Cluster, namespace: str) -> bool:
    """Whether ``namespace`` holds a PersistentVolumeClaim (one item read at most)."""
    try:
        resp = await cluster.core.list_namespaced_persistent_volume_claim(
            namespace, limit=1, _request_timeout=cluster.settings.request_timeout, _preload_content=False
        )
    except ApiException as e:
        if e.status == 404:
            return False
        raise _wrap(e) from None
    try:
        return bool((await _json(resp)).get("items"))
    except NotFound:
        return False


async def _items(resp: Any) -> list[Obj]:
    return [{"metadata": i.get("metadata") or {}} for i in (await _json(resp)).get("items") or []]


async def list_services(cluster: Cluster, namespace: str, label_selector: str) -> list[Obj]:
    """The Services of ``namespace`` matching ``label_selector`` (their metadata)."""
    try:
        resp = await cluster.core.list_namespaced_service(
            namespace,
            label_selector=label_selector,
            _request_timeout=cluster.settings.request_timeout,
            _preload_content=False,
        )
    except ApiException as e:
        raise _wrap(e) from None
    return await _items(resp)


async def list_secrets(cluster: Cluster, namespace: str, label_selector: str) -> list[Obj]:
    """The Secrets of ``namespace`` matching ``label_selector`` (their metadata only is kept)."""
    try:
        resp = await cluster.core.list_namespaced_secret(
            namespace,
            label_selector=label_selector,
            _request_timeout=cluster.settings.request_timeout,
            _preload_content=False,
        )
    except ApiException as e:
        raise _wrap(e) from None
    return await _items(resp)


async def delete_services(cluster: Cluster, namespace: str, label_selector: str) -> None:
    """Delete every Service of ``namespace`` matching ``label_selector``."""
    try:
        await cluster.core.delete_collection_namespaced_service(
            namespace, label_selector=label_selector, _request_timeout=cluster.settings.request_timeout
        )
    except ApiException as e:
        if e.status != 404:
            raise _wrap(e) from None


async def delete_secrets(cluster: Cluster, namespace: str, label_selector: str) -> None:
    """Delete every Secret of ``namespace`` matching ``label_selector``."""
    try:
        await cluster.core.delete_collection_namespaced_secret(
            namespace, label_selector=label_selector, _request_timeout=cluster.settings.request_timeout
        )
    except ApiException as e:
        if e.status != 404:
            raise _wrap(e) from None
