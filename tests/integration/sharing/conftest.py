"""Sharing a platform, on the real cluster: a broker (the operator as a process, the REST API in
this process) per module, on a platform of its own whose sharing policy each module chooses."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from tests.integration.api.stack import Broker
from tests.integration.operator.conftest import broker, crds  # noqa: F401 - shared fixtures


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
