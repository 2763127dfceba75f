"""The Kubernetes API client the operator and the REST service share (cluster/kube.py)."""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client

from eb_operator.cluster.kube import api_client

pytestmark = pytest.mark.unit


async def test_the_api_client_does_not_read_netrc_on_every_request() -> None:
    """aiohttp reads ~/.netrc in a worker thread per request when the session trusts the
    environment; the broker's credentials never come from there."""
    api = api_client(client.Configuration(host="https://127.0.0.1:6443"))
    try:
        assert api.rest_client.pool_manager.trust_env is False
    finally:
        await api.close()
