"""A Jupyter notebook session on the real kubelet: the notebook-server Pod (eb-notebook:latest,
jupyter-server from PyPI) with the notebook staged from the local HTTP server, a Service, and
an access URL with the token that answers HTTP 200 from here."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from tests.integration.data.conftest import Files, earliest, reaches
from tests.integration.operator.helpers import COMPUTE, FAST, FINAL, REAL_NODE_PLATFORM, Broker, phase

from eb_operator.api.views import session_document

MakeBroker = Callable[..., Coroutine[Any, Any, Broker]]
pytestmark = pytest.mark.timeout(300)

JUPYTER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0"
NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


async def test_a_notebook_session_is_ready_when_its_server_answers_at_the_url_with_its_token(
    broker: MakeBroker, files: Files, notebook_image: str
) -> None:
    location = files.put("analysis.ipynb", json.dumps(NOTEBOOK).encode())
    b = await broker({**REAL_NODE_PLATFORM, **FAST, "images": {"notebook": notebook_image}})
    req = {
        "executable": {"type": JUPYTER, "name": "analysis", "location": location},
        "resources": {
            "compute": [
                {"type": COMPUTE, "cores": {"requested": {"min": 1}}, "memory": {"requested": {"min": 1}}}
            ]
        },
        "schedule": {"requested": {"duration": "PT10M"}},
    }
    answer = await b.ask("notebook", req)
    assert answer["status"]["result"] == "YES", answer["status"]
    offer = await earliest(b, answer)
    accepted = time.monotonic()
    await b.desire(offer, "ACCEPTED")
    ready = await reaches(b, offer, "READY", "FAILED", "COMPLETED", timeout=180)
    took = time.monotonic() - accepted
    assert phase(ready) == "READY", ready["status"]
    [access] = ready["status"]["access"]
    assert access["status"] == "ACTIVE"
    assert access["protocol"] == "HTTP"
    service_url, url = access["locations"]  # the host cannot route to Service IPs; the Pod's it can
    assert service_url.split("?")[1] == url.split("?")[1]
    token = url.split("?token=", 1)[1]
    base = url.split("?", 1)[0].rstrip("/")
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        assert (await http.get(url)).status_code == 200, access
        staged = await http.get(f"{base}/api/contents/analysis.ipynb", params={"token": token})
        assert staged.status_code == 200, staged.text
        assert staged.json()["type"] == "notebook"
    async with httpx.AsyncClient(timeout=10, trust_env=False) as anonymous:  # no login cookie
        assert (await anonymous.get(f"{base}/api/contents/analysis.ipynb")).status_code == 403
    print(f"\nnotebook session: accepted -> READY in {took:.1f} s; {url}")
    document = session_document(ready, answer, "http://broker.example", datetime.now(UTC))
    assert document["executable"]["access"] == [access], "the REST session shows the URL"

    await b.desire(offer, "CANCELLED")
    done = await reaches(b, offer, *FINAL, timeout=90)
    assert phase(done) == "CANCELLED"
    assert done["status"]["access"] == [{"status": "FINISHED", "protocol": "HTTP"}]
