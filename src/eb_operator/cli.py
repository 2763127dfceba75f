"""One entry point: ``eb-operator operator|api|crds``.

Subcommands import their layer lazily so that ``eb-operator crds`` works without kopf or
FastAPI being importable, and start-up of one component never pays for the other.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from eb_operator.model.federation import DEFAULT_MAX_HOPS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eb-operator", description="IVOA ExecutionBroker on Kubernetes")
    sub = p.add_subparsers(dest="command", required=True)

    op = sub.add_parser("operator", help="run the kopf operator (offers, phases, Pods)")
    op.add_argument(
        "--namespace",
        action="append",
        default=None,
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    op.add_argument(
        "--platform", default=os.environ.get("EB_PLATFORM", "default"), help="ExecutionPlatform name"
    )
    op.add_argument(
        "--no-peering", action="store_true", help="run without kopf peering (single replica, dev)"
    )
    op.add_argument("--liveness", default=os.environ.get("EB_LIVENESS", "http://0.0.0.0:8081/healthz"))
    op.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("EB_METRICS_PORT", "0")),
        help="serve Prometheus metrics on this port at /metrics (0, the default: not served)",
    )
    op.add_argument(
        "--node-lost-grace",
        type=float,
        default=float(os.environ.get("EB_NODE_LOST_GRACE", "60")),
        help="seconds a node may be NotReady before the sessions on it fail (default 60)",
    )
    op.add_argument(
        "--session-key-file",
        default=os.environ.get("EB_SESSION_KEY_FILE") or None,
        help="the key shared with the REST API's gate (a mounted Secret); without it (or the file) no "
        "routes are made",
    )

    op.add_argument(
        "--peers-namespace",
        default=os.environ.get("EB_PEERS_NAMESPACE") or None,
        help="ask the BrokerPeers of this namespace for offers too (docs/federation.md); default: none",
    )
    op.add_argument(
        "--broker-id",
        default=os.environ.get("EB_BROKER_ID", "execution-broker"),
        help="this broker's id in the EB-Via header of forwarded requests (the API's EB_API_BROKER_ID)",
    )
    op.add_argument(
        "--max-hops",
        type=int,
        default=int(os.environ.get("EB_MAX_HOPS", str(DEFAULT_MAX_HOPS))),
        help="forward a request to peers only while it has been forwarded fewer times "
        f"(default {DEFAULT_MAX_HOPS})",
    )
    op.add_argument(
        "--peer-lost-seconds",
        type=float,
        default=float(os.environ.get("EB_PEER_LOST_SECONDS", "300")),
        help="seconds a peer may not answer about a session it holds before it is FAILED (default 300)",
    )
    op.add_argument(
        "--peer-poll-max-seconds",
        type=float,
        default=float(os.environ.get("EB_PEER_POLL_MAX_SECONDS", "30")),
        help="longest wait between two reads of a session held at a peer (default 30)",
    )
    op.add_argument(
        "--sessions-namespace",
        default=os.environ.get("EB_SESSIONS_NAMESPACE") or None,
        help="the REST API's namespace: its sessions run in a namespace per owner (default: none)",
    )
    op.add_argument(
        "--workloads-cluster-role",
        default=os.environ.get("EB_WORKLOADS_CLUSTERROLE") or None,
        help="ClusterRole the operator binds to itself in each owner namespace it makes",
    )
    op.add_argument(
        "--service-account",
        default=os.environ.get("EB_SERVICE_ACCOUNT") or None,
        help="the operator's ServiceAccount as namespace/name (the subject of those bindings)",
    )
    op.add_argument(
        "--api-logs-cluster-role",
        default=os.environ.get("EB_API_LOGS_CLUSTERROLE") or None,
        help="ClusterRole the operator binds to the REST API in each owner namespace it makes (its "
        "sessions' logs); default: none",
    )
    op.add_argument(
        "--api-service-account",
        default=os.environ.get("EB_API_SERVICE_ACCOUNT") or None,
        help="the REST API's ServiceAccount as namespace/name (the subject of that binding)",
    )

    op.add_argument(
        "--namespace-sweep-seconds",
        type=float,
        default=float(os.environ.get("EB_NAMESPACE_SWEEP_SECONDS", "60")),
        help="how often owner namespaces are swept for orphans and emptiness (default 60)",
    )

    api = sub.add_parser("api", help="serve the IVOA REST interface over the custom resources")
    api.add_argument("--host", default=os.environ.get("EB_API_HOST", "0.0.0.0"))
    api.add_argument("--port", type=int, default=int(os.environ.get("EB_API_PORT", "8080")))

    crds = sub.add_parser("crds", help="print the generated CustomResourceDefinitions as YAML")
    crds.add_argument("--out", default=None, help="write one file per CRD into this directory instead")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "operator":
        from eb_operator.model.session_keys import check_key
        from eb_operator.operator import run

        key = None
        if args.session_key_file and os.path.exists(args.session_key_file):
            with open(args.session_key_file, "rb") as f:
                key = check_key(f.read().strip())
        run(
            namespaces=args.namespace,
            platform=args.platform,
            peering=not args.no_peering,
            liveness=args.liveness or None,
            node_lost_grace=args.node_lost_grace,
            peer_namespace=args.peers_namespace,
            broker_id=args.broker_id,
            max_hops=args.max_hops,
            peer_lost_seconds=args.peer_lost_seconds,
            peer_poll_max_seconds=args.peer_poll_max_seconds,
            session_key=key,
            metrics_port=args.metrics_port or None,
            sessions_namespace=args.sessions_namespace,
            workloads_cluster_role=args.workloads_cluster_role,
            service_account=args.service_account,
            api_logs_cluster_role=args.api_logs_cluster_role,
            api_service_account=args.api_service_account,
            namespace_sweep_seconds=args.namespace_sweep_seconds,
        )
        return 0
    if args.command == "api":
        from eb_operator.api import serve

        serve(host=args.host, port=args.port)
        return 0
    if args.command == "crds":
        from eb_operator.model.crds import write_crds

        write_crds(args.out, sys.stdout)
        return 0
    return 2  # argparse already rejects unknown commands; kept for mypy's exhaustiveness


if __name__ == "__main__":
    sys.exit(main())
