"""The I/O around a session's Pod: objects made before it, the notebook's access URL, the data
probe at offer time, and the deletion of persistent storage whose lifetime has passed.

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
from eb_operator.model.platform import PlatformPolicy
from eb_operator.operator import storage
from eb_operator.operator.builders import notebook, staging
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


async def prepare(cluster: Cluster, execution: Obj, executable: Obj, policy: PlatformPolicy) -> None:
    """Create what the Pod refers to: PVCs, copies of endpoint Secrets, a notebook's token Secret
    and Service."""
    request = request_of(execution)
    plan = storage_plan(execution, policy)
    for claim in plan.claims:
        _, created = await objects.create_if_absent(cluster, claim)
        if created:
            log.info("%s", kv(msg="volume claim created", claim=claim["metadata"]["name"]))
    for endpoint, name in staging.credential_copies(execution, request, policy):
        assert endpoint.secret_name is not None
        assert endpoint.secret_namespace is not None
        source = await objects.get(cluster, "Secret", endpoint.secret_namespace, endpoint.secret_name)
        if source is None:  # the Pod then fails with "secret ... not found", which the session shows
            log.warning("%s", kv(msg="endpoint secret not found", secret=endpoint.secret_name))
            continue
        await objects.create_if_absent(cluster, staging.build_credential_copy(execution, name, source))
    if is_notebook(executable):
        await objects.create_if_absent(cluster, notebook.build_token_secret(execution, secrets.token_hex(24)))
        await objects.create_if_absent(cluster, notebook.build_service(execution))


async def access(
    cluster: Cluster, namespace: str, name: str, phase: Phase | None, pod: PodView | None
) -> list[dict[str, Any]] | None:
    """``status.access`` for a notebook session in ``phase``; None for other sessions."""
    if pod is None or not pod.interactive or phase is None:
        return None
    if phase in FINAL_PHASES or phase == Phase.RELEASING:
        return notebook.access_methods("FINISHED")
    if phase not in (Phase.READY, Phase.RUNNING):
        return notebook.access_methods("PREPARING")
    service = await objects.get(cluster, "Service", namespace, notebook.service_name(name))
    secret = await objects.get(cluster, "Secret", namespace, notebook.token_secret_name(name))
    try:
        pod_ip = ((await cluster.get_pod(namespace, pod.name)).get("status") or {}).get("podIP")
    except NotFound:
        pod_ip = None
    service_ip = ((service or {}).get("spec") or {}).get("clusterIP")
    token = ((secret or {}).get("data") or {}).get(notebook.TOKEN_KEY)
    addresses = [ip for ip in (service_ip, pod_ip) if ip and ip != "None"]
    if not addresses or not token:
        return notebook.access_methods("PREPARING")
    text = base64.b64decode(token).decode()
    return notebook.access_methods("ACTIVE", *(notebook.access_url(ip, text) for ip in addresses))


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
        if not mine(meta["namespace"]):
            continue
        phase = phase_of((meta.get("labels") or {}).get("executionbroker.ivoa.net/execution-uid", ""))
        ended = phase is False or (isinstance(phase, Phase) and phase in FINAL_PHASES)
        verdict = storage.claim_verdict(claim, ended, now)
        if verdict.delete:
            pod = (meta.get("annotations") or {}).get(ANN_POD)
            if pod:  # a finished Pod kept for its logs still holds the claim
                await cluster.delete_pod(meta["namespace"], pod)
            if await objects.delete_claim(cluster, meta["namespace"], meta["name"]):
                log.info("%s", kv(msg="persistent storage deleted: lifetime passed", claim=meta["name"]))
        elif verdict.annotations:
            await objects.annotate_claim(cluster, meta["namespace"], meta["name"], verdict.annotations)
