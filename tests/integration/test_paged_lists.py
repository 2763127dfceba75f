"""Paginated LISTs and the watches that follow them, against the real API server: the operator
rebuilds its state at start a page at a time (``eb_operator.cluster.feeds.Feed``) and then
watches from that listing's resourceVersion, and so does the REST API's watch when it (re)lists,
so 50,000 objects never sit in memory at once. Every object arrives exactly once across the
pages, and the pages really are pages."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from tests.integration.operator.helpers import API, ivoa_request
from tests.support.kube import REPO, Kubectl, async_wait_for

from eb_operator.cluster.crs import OFFERSETS, Cluster
from eb_operator.cluster.feeds import Feed
from eb_operator.cluster.kube import ClientSettings
from eb_operator.cluster.rest_store import _Watcher


def _configmap(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


async def test_a_feed_lists_a_page_at_a_time_then_watches_from_that_listing(
    kube: Kubectl, namespace: str
) -> None:
    mine = [f"page-{i}" for i in range(5)]
    kube.create(*(_configmap(namespace, n) for n in mine))
    expected = {item["metadata"]["name"] for item in kube.json("get", "configmaps", "-n", namespace)["items"]}
    assert set(mine) <= expected

    events: list[tuple[str, bool]] = []
    cluster = await Cluster.connect(ClientSettings())
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    feed = Feed(cluster, path, lambda o, d: events.append((o["metadata"]["name"], d)), page_size=2)
    try:
        listed = await feed.load()
        names = [n for n, _ in events]
        assert sorted(names) == sorted(expected)  # each once: a continue token neither skips nor repeats
        assert listed == len(expected)
        assert feed.resource_version

        # changes while nobody watches arrive through the watch that starts from the listing
        kube.create(_configmap(namespace, "made-after-the-list"))
        kube.run("delete", "configmap", "page-0", "-n", namespace)
        events.clear()
        feed.start()
        await async_wait_for(lambda: ("page-0", True) in events, 30, "the deletion from the watch")
        assert ("made-after-the-list", False) in events
        assert feed.stats.relists == 0, "watched from the listing's resourceVersion: nothing listed again"
        await feed.stop()

        # after a resourceVersion compacted away (410 Gone, tests/unit/operator/
        # test_operator_leadership.py) the feed lists again, and what went meanwhile is reported
        # deleted, known only by its key
        kube.run("delete", "configmap", "page-1", "-n", namespace)
        feed.resource_version = None
        events.clear()
        feed.start()
        await async_wait_for(lambda: feed.stats.relists == 1, 30, "a re-list after 410 Gone")
        await async_wait_for(lambda: ("page-1", True) in events, 30, "the deletion found by the re-list")
        assert sorted(n for n, d in events if not d) == sorted(
            expected - {"page-0", "page-1"} | {"made-after-the-list"}
        )
    finally:
        await feed.stop()
        await cluster.close()


async def test_the_api_watcher_lists_a_page_at_a_time_and_caches_every_object(
    kube: Kubectl, namespace: str, k8s: Any
) -> None:
    """The REST API's watch of OfferSets (re)lists page by page: at its start and after a
    compacted resourceVersion; whole, 25,000 sets took it above the chart's memory limit."""
    kube.run("apply", "-f", str(REPO / "crds"))
    kube.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    names = [f"w-{i}" for i in range(5)]
    kube.create(
        *(
            {
                "apiVersion": API,
                "kind": "OfferSet",
                "metadata": {"name": n, "namespace": namespace},
                "spec": {"request": ivoa_request()},
            }
            for n in names
        )
    )
    watcher = _Watcher(client.CustomObjectsApi(k8s), namespace, OFFERSETS, page_size=2)
    rv = await watcher._list()
    assert sorted(watcher.recent) == names  # every object once, across three pages
    listed = kube.json("get", "offersets", "-n", namespace)
    assert int(rv) >= max(int(o["metadata"]["resourceVersion"]) for o in listed["items"])  # one snapshot
