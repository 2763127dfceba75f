"""Sharing a platform, on the real cluster: a broker (the operator as a process, the REST API in
this process) per module, on a platform of its own whose sharing policy each module chooses; or
the operator in-process (``broker``, from the operator tests) for the real node's sessions."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from tests.integration.api.stack import Broker
from tests.integration.operator.conftest import broker, crds  # noqa: F401 - shared fixtures
from tests.support.kube import Kubectl, deployments_paused

INSTALLED = "app.kubernetes.io/part-of=execution-broker"


@pytest.fixture(scope="session", autouse=True)
def no_installed_broker(kube: Kubectl) -> Iterator[None]:
    """Scale every installed broker (the chart's, e.g. hack/up.sh's or the e2e suite's: its
    operator and its API) to 0 while these tests run, and back afterwards: an operator watching
    every namespace would answer the tests' OfferSets with its own policy, and its Pods' requests
    (50m each) leave the real node's two cores short of two one-core sessions at once."""
    with deployments_paused(kube, INSTALLED, "the installed broker"):
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the tail of the operator's log next to the test's output."""
    report = yield
    found = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, Broker)]
    if report.failed and found and found[0].operator_log.exists():
        tail = found[0].operator_log.read_text(errors="replace").splitlines()[-60:]
        report.sections.append(("operator log (tail)", "\n".join(tail)))
    return report
