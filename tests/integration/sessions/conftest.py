"""The broker with routes through the local cluster's Traefik (``tests.support.sessions``), one per
module: sessions on the real node, opened from this machine as a user would, in headless Chromium
(``tests.support.browser``) and with plain HTTP.

``files`` (notebooks served to the staging init container), ``notebook_image`` and
``no_installed_broker`` come from tests/integration/data, ``edge`` from tests/integration/ingress."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from tests.integration.data.conftest import files, no_installed_broker, notebook_image
from tests.integration.ingress.conftest import edge
from tests.support.browser import browser
from tests.support.ingress import Ingress
from tests.support.kube import REAL_NODE, Kubectl
from tests.support.sessions import SessionsStack, sessions_stack

__all__ = ["browser", "edge", "files", "no_installed_broker", "notebook_image"]


@pytest.fixture(scope="module")
def stack(
    kube: Kubectl,
    edge: Ingress,
    notebook_image: str,
    stager_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SessionsStack]:
    """The sessions' broker; a notebook's init container stages its file in ``stager_image``."""
    if not kube.exists("node", REAL_NODE):
        pytest.fail(f"these tests need the local cluster's real node {REAL_NODE}", pytrace=False)
    log = tmp_path_factory.mktemp("sessions") / "operator.log"
    with sessions_stack(kube, edge, log) as s:
        yield s


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the tail of the operator's log next to the test's output."""
    report = yield
    s = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(s, SessionsStack) and s.operator_log.exists():
        tail = s.operator_log.read_text(errors="replace").splitlines()[-40:]
        report.sections.append(("operator log (tail)", "\n".join(tail)))
    return report
