"""The operator's settings (``eb-operator operator`` flags and the tests' overrides)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eb_operator.model.federation import DEFAULT_MAX_HOPS
from eb_operator.operator.builders.pod import PodSettings

#: A node NotReady for longer than this is lost for the Executions that hold it (the default of
#: ``OperatorConfig.node_lost_grace``).
NODE_LOST_GRACE = 60.0


@dataclass(frozen=True)
class OperatorConfig:
    platform: str = "default"
    namespaces: frozenset[str] | None = None  # None: every namespace
    workers: int = 16
    offer_workers: int = 32  # OfferSets in flight: the lock serialises decisions, not writes
    sweep_seconds: float = 15.0
    pod: PodSettings = field(default_factory=PodSettings)
    clock: Callable[[], float] = time.time
    node_lost_grace: float = NODE_LOST_GRACE  # seconds NotReady before a node's sessions fail
    # seconds a search may hold the event loop before it moves to a worker thread (planning.py)
    decide_inline_seconds: float = 0.005
    # Peer brokers (docs/federation.md): the BrokerPeers of ``peer_namespace`` are asked for
    # offers; None: no peers. ``broker_id`` names this broker in the EB-Via header (the API must
    # be given the same id), ``max_hops`` bounds how far a request is forwarded.
    peer_namespace: str | None = None
    broker_id: str = "execution-broker"
    max_hops: int = DEFAULT_MAX_HOPS
    peer_refresh_seconds: float = 5.0  # how often the BrokerPeers are listed
    peer_probe_seconds: float = 30.0  # how often each is probed (and a changed one at once)
    peer_poll_seconds: float = 2.0  # the first wait between two reads of a remote session ...
    peer_poll_max_seconds: float = 30.0  # ... doubled while nothing changes, up to this
    peer_lost_seconds: float = 300.0  # a remote session without an answer this long is FAILED
    peer_offer_ttl: int = 3600  # a peer's offer is shown for at most this long
    # the key shared with the REST API's gate (eb_operator.model.session_keys); without it the
    # platform's routes are not made (a routed notebook's token derives from it)
    session_key: bytes | None = field(default=None, repr=False)
    # kopf peering (``eb_operator.operator.leadership``): the ClusterKopfPeering's name (None:
    # standalone, always leading), this operator's identity in it, and its priority
    peering: str | None = None
    identity: str = "eb-operator"
    priority: int = 0
    metrics_port: int | None = None  # serve /metrics here (None: not served)
    #: the REST API's namespace: its sessions' children run in per-owner namespaces (None: every
    #: Execution keeps its children beside it)
    sessions_namespace: str | None = None
    #: the ClusterRole with the operator's rights where sessions run, and its ServiceAccount
    #: ("namespace/name"): bound in each owner namespace it makes (None: the operator already has
    #: those rights everywhere, e.g. an admin's kubeconfig)
    workloads_cluster_role: str | None = None
    service_account: str | None = None
    #: the ClusterRole with the REST API's log reads (``pods/log`` get) and the API's
    #: ServiceAccount ("namespace/name"): bound in each owner namespace too, so the API reads a
    #: running session's log from its Pod there (None: not bound; the API then needs those rights
    #: some other way)
    api_logs_cluster_role: str | None = None
    api_service_account: str | None = None
    namespace_sweep_seconds: float = 60.0  # how often empty owner namespaces and orphans are looked for
