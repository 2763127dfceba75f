"""The REST service against the real cluster and a real operator, over real HTTP.

One broker per test session (``stack.broker_stack``: starting one costs seconds on two cores) on
a small platform of its own: two kwok nodes of 8 cores, 32 GiB and 2 GPUs that no other test
uses, offers that live 30 s. After each test every OfferSet and Execution in the namespace is
deleted, so capacity held by one test's offers never leaks into the next.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from tests.integration.api.stack import TOKENS, Broker, Shape, broker_stack, serve_api
from tests.support.kube import Kubectl

SHAPE = Shape()
NODE_CORES, NODE_MEMORY_GIB, NODE_GPUS, OFFER_TTL = SHAPE.cores, SHAPE.memory_gib, SHAPE.gpus, SHAPE.offer_ttl

__all__ = ["NODE_CORES", "NODE_GPUS", "NODE_MEMORY_GIB", "OFFER_TTL", "TOKENS", "Broker", "serve_api"]


@pytest.fixture(scope="session")
def broker(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with broker_stack(kube, log_path, SHAPE, answer_timeout=60) as b:
        yield b


@pytest.fixture
def eb(broker: Broker) -> Iterator[Broker]:
    """The session's broker, with the namespace emptied after the test."""
    yield broker
    broker.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the tail of the operator's log next to the test's output."""
    report = yield
    b = item.funcargs.get("eb") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(b, Broker) and b.operator_log.exists():
        tail = b.operator_log.read_text(errors="replace").splitlines()[-40:]
        report.sections.append(("operator log (tail)", "\n".join(tail)))
    return report
