"""kopf wiring: settings, start-up and clean-up, the liveness probe, and watch-event handlers.

Every handler is ``async`` (kopf runs sync handlers in threads; ours touch the operator's
in-memory state, which belongs to the event loop) and only records the event and marks a key
dirty (``eb_operator.operator.watching``): the decisions are made by the workers of
``eb_operator.operator.core.Operator``.

Why ``on.event`` and not ``on.create``/``on.update``: kopf's change-detecting handlers keep their
progress and the last handled state in annotations, which costs one more API write per object
per change. An answer is one OfferSet status write (its offers live in that status) and each
session step one Execution status write; kopf's bookkeeping would double that on the hot path,
and the phase machine is level-based anyway (it recomputes the next step from what is
observed, so it needs no memory of its past steps).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

import kopf

from eb_operator.cluster.crs import PLATFORMS, Cluster
from eb_operator.model.crds import GROUP, VERSION
from eb_operator.operator.core import Operator, OperatorConfig
from eb_operator.operator.events import kv

log = logging.getLogger("eb_operator.operator")


@dataclass
class Runtime:
    config: OperatorConfig
    operator: Operator | None = None

    @property
    def op(self) -> Operator:
        if self.operator is None:
            raise kopf.TemporaryError("the operator is still starting", delay=1)
        return self.operator


class _NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """No "last handled state": we have no change-detecting handlers, so kopf need not deep-copy
    every object on every event to compute one (that copy would be the largest cost per event)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def configure(settings: kopf.OperatorSettings) -> None:
    """Watches that never go deaf: the server ends each watch, the client gives up a bit later.
    Short, so that a watch left silent by an API server restart is re-made within ~35 s, inside
    the chaos test's 45 s bound for noticing a node change; a re-made watch resumes from its
    resourceVersion, so this costs one cheap request per watch every 25 s."""
    settings.watching.server_timeout = 25
    settings.watching.client_timeout = 35
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.posting.enabled = False  # we post our own Events, one per transition
    settings.scanning.disabled = True  # the CRDs are installed first; no runtime CRD scanning needed
    settings.peering.name = "eb-operator"
    settings.peering.clusterwide = True
    # kopf's first listing (50,000 Executions and OfferSets at 5,000 nodes) is a burst: a worker
    # task per object, each keeping the object's body while it idles. Chunked, the LIST's JSON
    # is one page at a time; with a worker limit the burst holds ~2,000 bodies per resource, not
    # all of them (all of them at 5,000 nodes is over a GiB, which pymalloc keeps once allocated).
    # Our handlers only record the event and queue a key: a worker has nothing to wait for, so it
    # exits after a second of quiet and frees its slot.
    settings.watching.chunk_size = 500
    settings.queueing.worker_limit = 2000
    settings.queueing.idle_timeout = 1.0
    settings.persistence.diffbase_storage = _NoDiffBase()


def in_cluster_address(info: kopf.ConnectionInfo) -> kopf.ConnectionInfo:
    """kopf's service-account login names the API server ``kubernetes.default.svc``, which only
    resolves where the cluster has DNS; the address in ``KUBERNETES_SERVICE_HOST``/``_PORT`` works
    everywhere (the official clients use it too)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if not host:
        return info
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return dataclasses.replace(info, server=server)


def make_registry(config: OperatorConfig) -> tuple[kopf.OperatorRegistry, Runtime]:
    registry = kopf.OperatorRegistry()
    rt = Runtime(config)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = kopf.login_with_service_account(**kwargs)
        return in_cluster_address(info) if info is not None else kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)
        op = Operator(await Cluster.connect(), config)
        await op.start()
        rt.operator = op

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if rt.operator is not None:
            await rt.operator.stop()
            await rt.operator.cluster.close()

    @kopf.on.probe(id="broker", registry=registry)
    async def probe(**_: Any) -> dict[str, Any]:
        return rt.op.health()

    @kopf.on.event(GROUP, VERSION, "executions", registry=registry)
    async def execution_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        rt.op.on_execution(body, type == "DELETED")

    @kopf.on.event(GROUP, VERSION, "offersets", registry=registry)
    async def offerset_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        rt.op.on_offerset(body, type == "DELETED")

    @kopf.on.event("", "v1", "pods", registry=registry)
    async def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        rt.op.on_pod(body, type == "DELETED")

    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def node_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        rt.op.on_node(body, type == "DELETED")

    @kopf.on.event(GROUP, VERSION, "executionplatforms", registry=registry)
    async def platform_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED" and body.metadata.name == config.platform:
            log.warning(
                "%s", kv(msg="platform deleted; the last valid policy stays", platform=body.metadata.name)
            )
        if type == "DELETED":
            return
        status = rt.op.on_platform(body)
        if status is not None and any((body.get("status") or {}).get(k) != v for k, v in status.items()):
            await rt.op.cluster.patch(PLATFORMS, None, body.metadata.name, {"status": status}, status=True)

    return registry, rt
