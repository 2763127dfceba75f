"""operator layer: the kopf operator (offers, the Execution phase machine, Pods).

``run()`` is the blocking entry point of ``eb-operator operator``; ``serve()`` is the same as a
coroutine, for running the operator inside another event loop (the integration tests do).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import socket
import threading
from collections.abc import Sequence
from typing import Any

import kopf

from eb_operator.operator.core import Operator, OperatorConfig
from eb_operator.operator.handlers import Runtime, make_registry

PEERING = "eb-operator"


def identity() -> str:
    """This operator's name among its peers: the Pod's name where it runs in one (the chart sets
    ``POD_ID``, as kopf reads it), else the host and process."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _with_peering(config: OperatorConfig, peering: bool | str) -> OperatorConfig:
    """``peering``: True (the ClusterKopfPeering ``eb-operator``), another peering object's name,
    or False (standalone: always leads)."""
    name = peering if isinstance(peering, str) else PEERING if peering else None
    return dataclasses.replace(config, peering=name, identity=identity())


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kopf").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request to a peer otherwise


async def serve(
    config: OperatorConfig,
    *,
    peering: bool | str = True,
    liveness: str | None = None,
    stop_flag: asyncio.Event | threading.Event | None = None,
    ready_flag: asyncio.Event | threading.Event | None = None,
    runtime: list[Runtime] | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or the task is cancelled).

    Give it an event loop of its own (``asyncio.run`` in a thread, with ``threading.Event``
    flags): when it stops, kopf cancels every task created in its loop while it ran.
    """
    config = _with_peering(config, peering)
    registry, rt = make_registry(config)
    if runtime is not None:
        runtime.append(rt)
    await kopf.operator(
        registry=registry,
        clusterwide=True,
        identity=config.identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        standalone=config.peering is None,
        peering_name=config.peering,
        priority=config.priority,
        liveness_endpoint=liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def run(
    namespaces: Sequence[str] | None = None,
    platform: str = "default",
    peering: bool = True,
    liveness: str | None = None,
    **overrides: Any,
) -> None:
    """``eb-operator operator``: run until SIGINT/SIGTERM.

    ``namespaces``: handle OfferSets and Executions only there (None: everywhere; nodes and
    Pods are always watched cluster-wide, since they make up capacity). ``platform``: the name of
    the ExecutionPlatform whose policy is used. ``peering``: kopf peering, so that only one
    replica is active. ``liveness``: e.g. ``http://0.0.0.0:8081/healthz``. ``overrides``: any
    :class:`OperatorConfig` field (workers, offer_workers, sweep_seconds, pod, node_lost_grace, ...).
    """
    configure_logging(getattr(logging, os.environ.get("EB_LOG_LEVEL", "INFO").upper(), logging.INFO))
    config = OperatorConfig(
        platform=platform, namespaces=frozenset(namespaces) if namespaces else None, **overrides
    )
    config = _with_peering(config, peering)
    registry, _ = make_registry(config)
    kopf.run(
        registry=registry,
        clusterwide=True,
        identity=config.identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str
        standalone=not peering,
        peering_name=config.peering,
        liveness_endpoint=liveness,
    )


__all__ = ["Operator", "OperatorConfig", "run", "serve"]
