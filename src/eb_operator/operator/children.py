"""The I/O around a session's Pod: objects made before it (and deleted at its end), its access
URLs, the data probe at offer time, and the deletion of persistent storage whose lifetime has
passed.

Everything here is idempotent: children have deterministic names and are created if absent, so a
reconcile that runs twice does no harm.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from eb_operator.cluster import objects
from eb_operator.cluster.convert import LABEL_MANAGED_BY, MANAGER
from eb_operator.cluster.crs import ApiError, Cluster, NotFound
from eb_operator.cluster.probe import Probe, probe_request
from eb_operator.engine.types import Phase
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.platform import DataEndpoint, PlatformPolicy
from eb_operator.model.session_keys import jupyter_token
from eb_operator.operator import routes, storage
from eb_operator.operator.builders import endpoints, notebook, stageout, staging
from eb_operator.operator.builders.children import LABEL_EXECUTION_NAMESPACE, child_namespace
from eb_operator.operator.builders.endpoints import Endpoint
from eb_operator.operator.builders.pod import is_notebook, request_of, storage_plan
from eb_operator.operator.builders.storage import ANN_POD, LABEL_STORAGE
from eb_operator.operator.events import kv
from eb_operator.operator.lifecycle import PodView

log = logging.getLogger("eb_operator.operator")
Obj = Mapping[str, Any]
_SWEEP_FORBIDDEN: list[bool] = []  # the sweep's 403 was reported (once per process)


async def probe(cluster: Cluster, namespace: str, request: Obj | None, policy: PlatformPolicy) -> Probe:
    """Probe the data of a request made in ``namespace`` (endpoint Secrets without a namespace
    are read there)."""

    async def read(ns: str | None, name: str) -> Mapping[str, str] | None:
        return await objects.read_secret_data(cluster, ns or namespace, name)

    return await probe_request(request, policy, read)


async def prepare(
    cluster: Cluster,
    execution: Obj,
    executable: Obj,
    policy: PlatformPolicy,
    session_key: bytes | None = None,
) -> None:
    """Create what the Pod refers to, and what brings people to it, where it runs
    (``builders.children``): PVCs, copies of endpoint Secrets, a notebook's token Secret and
    Service, a routed session's route objects (:mod:`eb_operator.operator.routes`; ``RouteFailed``
    when they cannot be made). A routed notebook's token derives from ``session_key`` (the gate
    passes it upstream); otherwise random."""
    request = request_of(execution)
    plan = storage_plan(execution, policy)
    for claim in plan.claims:
        _, created = await objects.create_if_absent(cluster, claim)
        if created:
            log.info("%s", kv(msg="volume claim created", claim=claim["metadata"]["name"]))
    await _copy_credentials(cluster, execution, staging.credential_copies(execution, request, policy))
    reach = endpoints.plan(execution, executable, policy)
    if is_notebook(executable):
        uid = str(execution["metadata"]["uid"])
        routed = reach.route is not None and session_key is not None
        token = jupyter_token(session_key, uid) if session_key and routed else secrets.token_hex(24)
        secret = notebook.build_token_secret(execution, token)
        await objects.create_if_absent(cluster, secret)
        await objects.create_if_absent(cluster, notebook.build_service(execution))
    if reach.route is not None and policy.routes is not None:
        await routes.ensure(cluster, execution, reach, policy.routes)


async def prepare_delivery(cluster: Cluster, execution: Obj, policy: PlatformPolicy) -> None:
    """Copy the Secrets of the endpoints the session's results go to next to its delivery Pod."""
    namespace = child_namespace(execution)
    copies = []
    for at, endpoint in stageout.stageout_endpoints(request_of(execution), policy):
        if staging.secret_source(endpoint, execution) != namespace:
            name = staging.credential_secret(endpoint, at, execution)
            assert name is not None
            copies.append((endpoint, name))
    await _copy_credentials(cluster, execution, copies)


async def _copy_credentials(cluster: Cluster, execution: Obj, copies: list[tuple[DataEndpoint, str]]) -> None:
    for endpoint, name in copies:
        assert endpoint.secret_name is not None
        source_ns = staging.secret_source(endpoint, execution)
        source = await objects.get(cluster, "Secret", source_ns, endpoint.secret_name)
        if source is None:  # the Pod then fails with "secret ... not found", which the session shows
            log.warning("%s", kv(msg="endpoint secret not found", secret=endpoint.secret_name))
            continue
        await objects.create_if_absent(cluster, staging.build_credential_copy(execution, name, source))


async def release(cluster: Cluster, execution: Obj) -> None:
    """At the session's end: delete its route objects and Services (:func:`routes.release`)."""
    await routes.release(cluster, execution)


def _method(status: str, locations: list[str], protocol: str) -> dict[str, Any]:
    method: dict[str, Any] = {"status": status, "protocol": protocol}
    if locations:
        method["locations"] = locations
    return method


def _scheme(e: Endpoint) -> str:
    return "https" if e.protocol == "HTTPS" else "http"


def _in_cluster(e: Endpoint, address: str, token: str | None) -> str:
    if e.notebook:
        return notebook.access_url(address, token or "", e.base_path)
    host = f"[{address}]" if ":" in address else address
    return f"{_scheme(e)}://{host}:{e.port}{e.path}"


async def access(
    cluster: Cluster, namespace: str, name: str, phase: Phase | None, pod: PodView | None
) -> dict[str, Any] | None:
    """The status fields of a session a person connects to, in ``phase`` (None for other
    sessions): ``access``, one ExecutableAccessMethod per endpoint, PREPARING, ACTIVE with its
    URLs (the external one first, then the Service's and the Pod's in-cluster ones), or FINISHED;
    for a routed session its ``route`` (the gate reads it) and a container's ``ports`` as the
    service fills them (DockerNetworkPort ``external`` and ``path``)."""
    reach = pod.reach if pod is not None else None
    if reach is None or phase is None:
        return None
    out: dict[str, Any] = {}
    if reach.route is not None:
        out["route"] = reach.route.status()
        ports = endpoints.network_ports(reach.endpoints)
        if ports:
            out["ports"] = ports
    ended = phase in FINAL_PHASES or phase == Phase.RELEASING
    serving = phase == Phase.RUNNING or (phase == Phase.READY and bool(pod and pod.interactive))
    if ended or not serving:
        status = "FINISHED" if ended else "PREPARING"
        out["access"] = [_method(status, [], _protocol(e)) for e in reach.endpoints]
        return out
    assert pod is not None
    try:
        pod_ip = ((await cluster.get_pod(namespace, pod.name)).get("status") or {}).get("podIP")
    except NotFound:
        pod_ip = None
    token = None
    if any(e.notebook for e in reach.endpoints):
        secret = await objects.get(cluster, "Secret", namespace, notebook.token_secret_name(name))
        data = ((secret or {}).get("data") or {}).get(notebook.TOKEN_KEY)
        token = base64.b64decode(data).decode() if data else None
    service_ips: dict[str, str | None] = {}
    methods = []
    for e in reach.endpoints:
        if e.service not in service_ips:
            service = await objects.get(cluster, "Service", namespace, e.service)
            service_ips[e.service] = ((service or {}).get("spec") or {}).get("clusterIP")
        addresses = [ip for ip in (service_ips[e.service], pod_ip) if ip and ip != "None"]
        inside = [_in_cluster(e, ip, token) for ip in addresses] if not (e.notebook and not token) else []
        locations = ([e.url] if e.url else []) + inside
        ready = bool(inside)
        methods.append(_method("ACTIVE" if ready else "PREPARING", locations if ready else [], _protocol(e)))
    out["access"] = methods
    return out


def _protocol(e: Endpoint) -> str:
    """The protocol of an endpoint's first location: the public URL's scheme when routed."""
    return (e.url or _scheme(e)).split(":", 1)[0].upper()


async def sweep_claims(
    cluster: Cluster, mine: Callable[[str], bool], phase_of: Callable[[str], Phase | bool | None], now: int
) -> None:
    """Delete persistent-storage PVCs whose lifetime has passed (see ``storage.claim_verdict``).
    ``phase_of(execution uid)``: the Execution's phase, or False when there is no such Execution."""
    selector = f"{LABEL_MANAGED_BY}={MANAGER},{LABEL_STORAGE}=persistent"
    try:
        claims = await objects.list_claims(cluster, selector)
    except ApiError as e:
        if e.status == 403:  # an install without persistent storage may withhold it: say so, once
            if not _SWEEP_FORBIDDEN:
                _SWEEP_FORBIDDEN.append(True)
                log.warning(
                    "%s",
                    kv(
                        msg="may not list persistentvolumeclaims: persistent storage is never deleted",
                        fix="grant list on persistentvolumeclaims (manifests/rbac.yaml)",
                    ),
                )
            return
        raise
    for claim in claims:
        meta = claim["metadata"]
        # a claim in an owner namespace belongs to the namespace of its Execution
        of = (meta.get("labels") or {}).get(LABEL_EXECUTION_NAMESPACE) or meta["namespace"]
        if not mine(of):
            continue
        ended, delivered = storage.sessions_over(claim, phase_of)
        await apply_verdict(cluster, claim, storage.claim_verdict(claim, ended, now, delivered))


async def apply_verdict(cluster: Cluster, claim: Obj, verdict: storage.Verdict) -> None:
    """Delete a claim (and the finished Pods that still hold it), or note its new deadline."""
    meta = claim["metadata"]
    if verdict.delete:
        for pod in str((meta.get("annotations") or {}).get(ANN_POD) or "").split(","):
            if pod:  # a finished Pod kept for its logs still holds the claim
                await cluster.delete_pod(meta["namespace"], pod)
        if await objects.delete_claim(cluster, meta["namespace"], meta["name"]):
            log.info("%s", kv(msg="persistent storage deleted: lifetime passed", claim=meta["name"]))
    elif verdict.annotations:
        await objects.annotate_claim(cluster, meta["namespace"], meta["name"], verdict.annotations)
