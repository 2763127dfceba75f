"""kopf wiring: settings, login, start-up and clean-up, the liveness probe, and peering.

kopf watches nothing of ours: the operator follows nodes, Pods, Executions, OfferSets and its
platform with feeds of its own (``eb_operator.cluster.feeds``), each a LIST at start and then a
WATCH from that LIST's resourceVersion. kopf's own watching lists every object again when it
starts (and after every pause), and hands each to a handler through a worker of its own: at 5,000
nodes and 50,000 objects that second listing took ~30 s after the operator's own, and a set made
meanwhile waited for it (docs/reliability.md). kopf still keeps this operator's keep-alive in
the peering object; ``eb_operator.operator.leadership`` reads that object to lead or stand by.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

import kopf

from eb_operator.cluster.crs import Cluster
from eb_operator.operator.core import Operator, OperatorConfig

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


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf's own watches (only the peering object's) never go deaf: the server ends each watch,
    the client gives up a bit later (the operator's feeds use the same 25/35 s)."""
    settings.watching.server_timeout = 25
    settings.watching.client_timeout = 35
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.posting.enabled = False  # we post our own Events, one per transition
    settings.scanning.disabled = True  # the CRDs are installed first; no runtime CRD scanning needed
    if config.peering is not None:
        settings.peering.name = config.peering
        settings.peering.priority = config.priority
    settings.peering.clusterwide = True


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
        configure(settings, config)
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

    return registry, rt
