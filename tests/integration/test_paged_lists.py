"""Paginated LISTs against the real API server: the operator rebuilds its state at start a page
at a time (``Cluster.pages``), and so does the REST API's watch when it (re)lists, so 50,000
objects never sit in memory at once. Every object arrives exactly once across the pages, and
the pages really are pages."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from tests.integration.operator.helpers import API, ivoa_request
from tests.support.kube import REPO, Kubectl

from eb_operator.cluster.crs import OFFERSETS, Cluster
from eb_operator.cluster.kube import ClientSettings
from eb_operator.cluster.rest_store import _Watcher


async def test_pages_deliver_every_object_once_a_page_at_a_time(kube: Kubectl, namespace: str) -> None:
    mine = [f"page-{i}" for i in range(5)]
    kube.create(
        *(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n, "namespace": namespace}}
            for n in mine
        )
    )
    expected = {item["metadata"]["name"] for item in kube.json("get", "configmaps", "-n", namespace)["items"]}
    assert set(mine) <= expected

    cluster = await Cluster.connect(ClientSettings())
    try:
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        pages = [page async for page in cluster.pages(path, page_size=2)]
    finally:
        await cluster.close()

    names = [item["metadata"]["name"] for page in pages for item in page]
    assert sorted(names) == sorted(expected)  # each once: a continue token neither skips nor repeats
    assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1)
    assert len(pages) == -(-len(expected) // 2)


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
