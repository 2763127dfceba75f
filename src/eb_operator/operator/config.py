"""The operator's settings (``eb-operator operator`` flags and the tests' overrides)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
