"""The REST API in this process with a cluster it cannot reach (a closed local port): what it
answers before, or without, the API server."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from eb_operator.api import ApiSettings, create_app
from eb_operator.cluster.rest_store import RestStore


def closed_port() -> int:
    """A local port nothing listens on (bound, then closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def offline_api(settings: ApiSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app (started) and a client of it; every call it makes to the cluster fails at once."""
    port = closed_port()

    async def unreachable(s: ApiSettings) -> RestStore:
        return RestStore.at(f"http://127.0.0.1:{port}", s.namespace, request_timeout=1)

    app = create_app(settings, store_factory=unreachable)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://broker.test") as c,
    ):
        yield app, c
