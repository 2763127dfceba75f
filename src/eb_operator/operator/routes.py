"""The I/O of a session's route (``eb_operator.operator.builders.routes``): made when the session
prepares, deleted when it ends.

Idempotent both ways: objects have deterministic names, a route object that is already there is
adopted (replaced by what the session needs), and deleting what is gone is success. A route the
cluster cannot take (its kind not served, no right to make it, an invalid object) is a
:class:`RouteFailed`, which fails the session with the cause instead of retrying for ever.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from eb_operator.cluster import objects
from eb_operator.cluster.crs import ApiError, Cluster
from eb_operator.model.platform import RouteGate, SessionRoutes
from eb_operator.operator.builders import endpoints, notebook, routes
from eb_operator.operator.builders.children import child_namespace
from eb_operator.operator.events import kv

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]

#: API-server answers that trying again will not change.
PERMANENT = frozenset({400, 403, 404, 422})


class RouteFailed(Exception):
    """The session's route cannot be made; the message says why."""


async def gate_address(cluster: Cluster, gate: RouteGate) -> str:
    """The REST API's base address as the ingress controller reaches it: ``gate.url``, or
    ``http://<ClusterIP>:<port>`` of ``gate.service``."""
    if gate.url is not None:
        return gate.url
    assert gate.service is not None
    ref = gate.service
    found = await objects.get(cluster, "Service", ref.namespace, ref.name)
    ip = ((found or {}).get("spec") or {}).get("clusterIP")
    if not ip or ip == "None":
        raise RouteFailed(
            f"the gate's Service {ref.namespace}/{ref.name} has no ClusterIP (routes.gate.service)"
        )
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{ref.port}"


async def ensure(cluster: Cluster, execution: Obj, reach: endpoints.Plan, policy: SessionRoutes) -> None:
    """Make (or adopt) the session's route objects."""
    try:
        address = await gate_address(cluster, policy.gate)
        for body in routes.route_objects(execution, reach.endpoints, policy, address):
            if body["kind"] == "Service":
                _, created = await objects.create_if_absent(cluster, body)
            else:
                _, created = await objects.put_route(cluster, body)
            what = "created" if created else "adopted"
            log.info("%s", kv(msg=f"route object {what}", kind=body["kind"], name=body["metadata"]["name"]))
    except ApiError as e:
        if e.status not in PERMANENT:
            raise
        raise RouteFailed(
            f"the session's route could not be made: {e.status} {e.reason}: {_message(e)}"
        ) from e


async def release(cluster: Cluster, execution: Obj) -> None:
    """Delete what a session's endpoints needed: its route (either kind), its gate, its Services.
    The Pod (kept for its logs) and the notebook's token Secret stay until the Execution goes."""
    namespace, name = child_namespace(execution), str(execution["metadata"]["name"])
    for kind in (routes.INGRESS, routes.HTTPROUTE, routes.MIDDLEWARE):
        target = routes.gate_name(name) if kind == routes.MIDDLEWARE else routes.route_name(name)
        if await objects.delete_route(cluster, kind, namespace, target):
            log.info("%s", kv(msg="route object deleted", kind=kind, name=target))
    for service in (notebook.service_name(name), routes.app_service_name(name)):
        if await objects.delete_service(cluster, namespace, service):
            log.info("%s", kv(msg="service deleted", name=service))


def _message(e: ApiError) -> str:
    try:
        return str(json.loads(e.body).get("message") or e.body)[:300]
    except ValueError:
        return e.body[:300]
