"""Three brokers of this project on the one real cluster, federated (``stack.federation``):

* **a**, the aggregator the tests talk to: two kwok nodes of its own; its BrokerPeers name b and c;
* **b**, a peer speaking ivoa-std, whose platform is the cluster's real node ``eb-real-node``
  (an accepted session runs a real container there);
* **c**, a peer speaking the Calycopis 2026 dialect, two kwok nodes of its own.

One federation per module (starting six processes costs seconds on two cores); tests that stop a
site's processes start them again. After each test every OfferSet and Execution of every site is
deleted, so capacity held by one test never leaks into the next.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from tests.integration.federation.stack import Site, SiteSpec, federation, peer
from tests.support.kube import REAL_NODE, Kubectl, wait_for

SPECS = (
    SiteSpec("a", peer_lost_seconds=20, peer_poll_max_seconds=3),
    SiteSpec("b", nodes=0, real=True),
    SiteSpec("c"),
)


@pytest.fixture(scope="module")
def sites(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Site]]:
    if not kube.exists("node", REAL_NODE):
        pytest.fail(
            f"the local cluster's real node {REAL_NODE} is missing: hack/cluster.sh up", pytrace=False
        )
    with federation(kube, tmp_path_factory.mktemp("federation"), SPECS) as found:
        peer(found["a"], found["b"])
        peer(found["a"], found["c"], dialect="c26")
        yield found


@pytest.fixture
def fed(sites: dict[str, Site]) -> Iterator[dict[str, Site]]:
    yield sites
    for site in sites.values():
        for kind in ("offersets", "executions"):
            site.kube.run("delete", kind, "--all", "-n", site.namespace, "--wait=false", check=False)
    for site in sites.values():
        wait_for(
            lambda site=site: not site.items("executions") and not site.items("offersets"),
            120,
            f"site {site.name}'s OfferSets and Executions to be gone",
            interval=0.5,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, show the tail of every site's operator log next to the test's output."""
    report = yield
    found = item.funcargs.get("fed") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(found, dict):
        for site in found.values():
            report.sections.append((f"site {site.name} operator log (tail)", site.tail()))
    return report
