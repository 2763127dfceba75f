"""Fault-injection tests (issue 9): the operator killed, an API replica killed, the API server
restarted, the real node's kubelet stopped, and the clock at slot and expiry boundaries. Each
scenario ends with the independent checker of tests/chaos/checker.py.

Items here get the ``chaos`` marker. They need the local cluster (hack/cluster.sh: they restart
its components) and reuse the integration fixtures ``kube``, ``make_namespace``, ``crds`` and
``stager_image``.
The whole directory is bounded: about 5 min on the 2-core machine (docs/reliability.md).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tests.integration.conftest import kube, kubeconfig, make_namespace, stager_image
from tests.integration.operator.conftest import crds

__all__ = ["crds", "kube", "kubeconfig", "make_namespace", "stager_image"]

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.chaos)
            # kopf closes its watch streams by garbage collection when an in-process operator's
            # loop ends; those warnings belong to that teardown, not to the test
            item.add_marker(pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::ResourceWarning"))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A seeded random source: the seed is printed (and shown on failure); EB_CHAOS_SEED repeats a run."""
    import os

    seed = int(os.environ.get("EB_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"chaos seed: EB_CHAOS_SEED={seed}")
    request.node.user_properties.append(("chaos_seed", seed))
    return random.Random(seed)
