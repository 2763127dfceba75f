"""The e2e suite: the chart installed from the built image, then only REST and kubectl.

Items under tests/e2e get the ``e2e`` marker. ``installed`` (session) brings the release up once
(idempotent: ``helm upgrade --install``); tests that take it down (upgrade, uninstall) leave it
to the next user of ``installed`` to bring it back. Runs against ``KUBECONFIG`` if set, else the
local cluster.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests.support` without -m pytest

from tests.e2e.install import INSTALLS, Installation, cluster_lock, ensure_image, installation
from tests.support.kube import Kubectl, find_kubeconfig

from eb_operator.client import BrokerClient

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def kube() -> Kubectl:
    path = find_kubeconfig()
    if path is None:
        pytest.fail("no cluster: run `hack/cluster.sh up` (or set KUBECONFIG)", pytrace=False)
    k = Kubectl(path)
    if not k.ready():
        pytest.fail(f"the cluster in {path} does not answer /readyz", pytrace=False)
    return k


@pytest.fixture(scope="session")
def broker(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    """The release, not necessarily installed: tests that install or remove it take this.
    Other installs' operators are paused for the session (two would pause each other)."""
    holder = f"{socket.gethostname()}/{os.getpid()}"
    with cluster_lock(kube, holder), installation(kube, tmp_path_factory.mktemp("release")) as inst:
        inst.image_source = ensure_image(inst.image, Path(kube.kubeconfig))
        inst.pause_other_brokers()
        yield inst


@pytest.fixture
def installed(broker: Installation) -> Installation:
    """The release, installed with the suite's values and ready. The first use in a session
    always runs ``helm upgrade --install`` (a no-op rollout when nothing changed); later uses
    reinstall only if a test removed it."""
    if broker.install_seconds is None or not broker.installed():
        broker.install()
    else:
        broker.wait_ready()
    return broker


@pytest.fixture
def alice(installed: Installation) -> Iterator[BrokerClient]:
    with BrokerClient(installed.url(), installed.tokens["alice"], timeout=60) as c:
        yield c


@pytest.fixture
def bob(installed: Installation) -> Iterator[BrokerClient]:
    with BrokerClient(installed.url(), installed.tokens["bob"], timeout=60) as c:
        yield c


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tail of the broker's logs."""
    report = yield
    inst = item.funcargs.get("installed") if hasattr(item, "funcargs") else None
    if report.failed and report.when == "call" and isinstance(inst, Installation):
        for d in (inst.operator_deployment, inst.api_deployment):
            out = inst.kube.run("logs", f"deployment/{d}", "-n", inst.namespace, "--tail=40", check=False)
            report.sections.append((f"{d} log (tail)", out.stdout or out.stderr))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What an operator of the suite wants to know: how the image came and how long installs took."""
    if INSTALLS:
        lines = [f"{what}: {seconds:.1f} s" for what, seconds in INSTALLS]
        terminalreporter.write_sep("-", "e2e installs")
        for line in lines:
            terminalreporter.write_line(line)
