"""The operator as the benchmarks' instrumented children (counted_operator.py,
profile_operator.py) run it: one namespace and platform, no peering, and the liveness endpoint
on 127.0.0.1 where the benchmark polls for readiness."""

from __future__ import annotations

from eb_operator.operator import run


def run_operator(namespace: str, platform: str, liveness_port: str) -> None:
    run(
        namespaces=[namespace],
        platform=platform,
        peering=False,
        liveness=f"http://127.0.0.1:{liveness_port}/healthz",
    )
