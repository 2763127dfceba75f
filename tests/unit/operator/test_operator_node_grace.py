"""How long a NotReady node may stay so before the sessions on it fail: a setting, not a constant
(the chaos test stops a real kubelet and must not wait the production minute)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from eb_operator.cli import _parser
from eb_operator.cluster.crs import Cluster
from eb_operator.operator.core import NODE_LOST_GRACE, Operator, OperatorConfig

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def node(ready: bool, rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1", "labels": {}, "resourceVersion": rv},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "8", "memory": "32Gi"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


@pytest.mark.parametrize("grace", [5.0, NODE_LOST_GRACE])
def test_a_not_ready_node_is_lost_after_the_configured_grace_and_not_before(grace: float) -> None:
    clock = Clock(1000.0)
    op = Operator(cast(Cluster, None), OperatorConfig(clock=clock, node_lost_grace=grace))
    op.on_node(node(True, "1"), deleted=False)
    op.on_node(node(False, "2"), deleted=False)  # NotReady from t=1000
    clock.t = 1000.0 + grace - 0.5
    assert not op.node_lost("n1")
    clock.t = 1000.0 + grace
    assert op.node_lost("n1")
    op.on_node(node(True, "3"), deleted=False)  # back: the grace starts afresh next time
    assert not op.node_lost("n1")


def test_the_default_grace_is_a_minute_and_the_cli_sets_it() -> None:
    assert OperatorConfig().node_lost_grace == 60.0
    args = _parser().parse_args(["operator", "--node-lost-grace", "7.5"])
    assert args.node_lost_grace == 7.5
