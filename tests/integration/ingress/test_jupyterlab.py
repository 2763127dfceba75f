"""The notebook image (``eb-notebook:latest``, hack/build-test-images.sh) serves JupyterLab, as uid
1000, both ways a session would run it: ``jupyter-server`` (the operator's command) answers
``/lab``, and ``jupyter lab --ServerApp.base_url=<prefix>`` serves under a path prefix, here
through the cluster's ingress, where a kernel started over REST computes a value over its
websocket (Jupyter's kernel channels)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from tests.integration.ingress.conftest import server_pod, service, start
from tests.support.ingress import Ingress, ingress_manifest, wait_answer
from tests.support.kube import Kubectl, unique_name
from websockets.sync.client import connect

pytestmark = pytest.mark.timeout(600)

PORT = 8888


def _execute(ws: Any, code: str) -> str:
    """Run ``code`` in the kernel behind ``ws`` (Jupyter's JSON websocket protocol); return the
    text of its execute_result."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    while True:
        msg = json.loads(ws.recv(timeout=60))
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "execute_result":
            return str(msg["content"]["data"]["text/plain"])
        if msg["msg_type"] == "error":
            raise AssertionError(f"the kernel failed: {msg['content']}")


def test_jupyterlab_in_the_notebook_image_runs_as_uid_1000_and_serves_under_a_prefix(
    kube: Kubectl, ns: str, edge: Ingress, notebook_image: str
) -> None:
    token = uuid.uuid4().hex
    prefix = f"/nb-{uuid.uuid4().hex[:8]}/"
    name = unique_name("lab", 30)
    lab = server_pod(
        name,
        [
            "jupyter",
            "lab",
            "--ip=0.0.0.0",
            f"--port={PORT}",
            "--no-browser",
            f"--ServerApp.base_url={prefix}",
        ],
        PORT,
        image=notebook_image,
        env={"JUPYTER_TOKEN": token},
        ready_path=f"{prefix}api",
    )
    plain = server_pod(
        f"{name}-server",
        ["jupyter-server", "--ip=0.0.0.0", f"--port={PORT}"],
        PORT,
        image=notebook_image,
        env={"JUPYTER_TOKEN": token},
        ready_path="/api",
    )
    start(kube, ns, [lab, service(name, 80, PORT), plain])

    for pod in (name, f"{name}-server"):
        uid = kube.run("exec", "-n", ns, pod, "--", "id", "-u").stdout.strip()
        assert uid == "1000", pod

    # jupyter-server, as the operator runs it, serves JupyterLab at /lab (from this host, at the Pod)
    ip = kube.get("pod", f"{name}-server", ns)["status"]["podIP"]
    page = httpx.get(f"http://{ip}:{PORT}/lab", headers={"Authorization": f"token {token}"}, timeout=30)
    assert page.status_code == 200
    assert "<title>JupyterLab</title>" in page.text

    # jupyter lab under a prefix, through the ingress
    kube.apply(ingress_manifest(name, ns, edge.ingress_class, prefix, name))
    base = edge.url + prefix
    auth = {"Authorization": f"token {token}"}
    wait_answer(base + "api/status", 200, headers=auth)
    page = httpx.get(base + "lab", headers=auth, timeout=30)
    assert page.status_code == 200
    assert f'"baseUrl": "{prefix}"' in page.text
    # the application's own JavaScript is served under the prefix too
    scripts = re.findall(r'src="([^"]*/static/lab/[^"]+\.js)[^"]*"', page.text)
    assert scripts
    assert all(src.startswith(prefix) for src in scripts), scripts
    for src in scripts:
        assert httpx.get(edge.url + src, headers=auth, timeout=30).status_code == 200, src
    anonymous = httpx.get(base + "lab", timeout=30)  # no token: sent to the login page
    assert anonymous.status_code == 302
    assert anonymous.headers["location"].startswith(f"{prefix}login")

    kernel = httpx.post(base + "api/kernels", headers=auth, json={"name": "python3"}, timeout=60)
    assert kernel.status_code == 201, kernel.text
    channels = edge.url.replace("http://", "ws://", 1) + f"{prefix}api/kernels/{kernel.json()['id']}/channels"
    with connect(channels, additional_headers=auth, open_timeout=30, close_timeout=5) as ws:
        assert _execute(ws, "6 * 7") == "42"
