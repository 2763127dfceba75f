"""Sessions a person opens in a browser, end to end on the local cluster: the operator routes them
through Traefik (an Ingress for the notebook, an HTTPRoute on the shared Gateway for the web app),
the REST API's gate lets only the owner in, and the route is gone when the session ends.

One session of each kind carries every assertion about it (a notebook session takes ~10-20 s to
be READY on this machine): JupyterLab opened from a login link in headless Chromium, a cell
computed by the kernel over its websocket and read back, a screenshot kept under
tests/artifacts/; other users and anonymous requests refused at the edge; a login link that works
once; a web app (``python3 -m http.server``) serving under the base path it is told; after the
end, no route objects and 404.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid as uuidlib
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from tests.integration.data.conftest import Files
from tests.support.browser import Browser
from tests.support.ingress import answer, wait_answer
from tests.support.kube import Kubectl
from tests.support.sessions import TOKENS, SessionsStack, notebook_request, web_app_request

pytestmark = pytest.mark.timeout(600)

GONE_WITHIN = 10  # seconds from the session's end to a 404 at its URL (route deletion, seen by Traefik)


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[user]}"}


def notebook_document(code: str) -> bytes:
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "id": "c0",
        "metadata": {},
        "outputs": [],
        "source": [code],
    }
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    doc = {"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc).encode()


def route_objects_gone(kube: Kubectl, namespace: str, uuid: str, *kinds: tuple[str, str]) -> None:
    for kind, suffix in kinds:
        assert not kube.exists(kind, f"eb-{uuid}-{suffix}", namespace), (kind, suffix)


# --- a notebook, in JupyterLab ---------------------------------------------------------------------

#: the first cell's CodeMirror 6 editable (its wrapper .jp-InputArea-editor takes no keys)
EDITOR = ".jp-NotebookPanel .jp-Cell .jp-InputArea-editor .cm-content"
OUTPUT_JS = """
const out = document.querySelector('.jp-NotebookPanel .jp-Cell .jp-OutputArea-output');
return out ? out.innerText.trim() : null;
"""


def notebook_ready(d: WebDriver) -> bool:
    """The notebook is open and its kernel connected and idle: the status bar's kernel status
    reads "<kernel> | Idle". The toolbar's execution indicator is no witness: it says idle while
    the kernel is still "Initializing", and a cell run then is dropped (its prompt stays [ ])."""
    status = d.execute_script(
        "const open = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');"
        "const bar = document.querySelector('#jp-main-statusbar');"
        "return open && bar ? bar.innerText : null;"
    )
    return bool(status) and re.search(r"\| Idle\b", status) is not None


def test_a_notebook_opens_in_jupyterlab_for_its_owner_only_and_its_url_is_gone_when_it_ends(
    stack: SessionsStack, files: Files, browser: Browser
) -> None:
    stack.use_routes(stack.routes())
    n = secrets.randbelow(10**9)
    file = f"analysis-{uuidlib.uuid4().hex[:8]}.ipynb"
    location = files.put(file, notebook_document(f"{n} * 7919 % 1000003"))
    uuid = stack.accept(notebook_request(location))
    ready = stack.reaches(uuid, "READY")
    assert ready["phase"] == "READY", ready
    path = f"/session/notebook/{uuid}/"
    url = f"{stack.edge.url}{path}lab/tree/{file}"
    [access] = ready["executable"]["access"]
    assert access["status"] == "ACTIVE"
    assert access["locations"][0] == url, access  # the public URL first, then in-cluster ones
    assert all(f":8888{path}?token=" in u for u in access["locations"][1:]), access

    # at the edge: only the owner. READY is the notebook server answering its probe; Traefik routes
    # to it once it has seen the Service's endpoints ready (a second or so later)
    wait_answer(url, 401, timeout=30)
    assert answer(url, bearer("bob"))[0] == 403
    assert stack.login(uuid, "bob").status_code == 404  # bob cannot even ask for a link
    status, page = answer(url, bearer("alice"))  # an API client: the owner's bearer token
    assert status == 200
    assert "<title>JupyterLab</title>" in page  # the gate passed the server's own token upstream

    # in a browser: the login link sets the cookie and lands in JupyterLab on the notebook
    r = stack.login(uuid)
    assert r.status_code == 200, r.text
    link = r.json()["url"]
    assert link.startswith(f"{url}?eb-login=")
    browser.get(link)
    browser.wait_until(
        lambda d: d.current_url == url, 60, "the login link to go to the notebook, without its code"
    )
    browser.wait_until(notebook_ready, 180, f"JupyterLab to open {file} with an idle kernel")
    cookie = browser.driver.get_cookie("eb_session")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["path"], cookie.get("sameSite")) == (True, path, "Lax")
    assert file in browser.text()

    # a cell run by the kernel (over its websocket, through the route), its answer read back
    editor = browser.wait_until(
        lambda d: (e := d.find_element(By.CSS_SELECTOR, EDITOR)).is_displayed() and e,
        60,
        "the cell's editor to show",
    )
    editor.click()
    ActionChains(browser.driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    got = browser.wait_until(
        lambda d: d.execute_script(OUTPUT_JS), 120, "the kernel's answer in the output area"
    )
    assert got == str(n * 7919 % 1000003)
    shot = browser.screenshot("jupyterlab")
    print(f"\nJupyterLab screenshot: {shot}")
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    assert answer(link)[0] == 401  # the link worked once

    # the end: the route objects (in alice's namespace, with her session) go, and the URL answers
    # 404 within seconds
    assert stack.kube.exists("ingress", f"eb-{uuid}-route", stack.owner_namespace())
    stack.cancel(uuid)
    done = stack.reaches(uuid, "CANCELLED")
    assert done["phase"] == "CANCELLED"
    route_objects_gone(
        stack.kube,
        stack.owner_namespace(),
        uuid,
        ("ingress", "route"),
        ("middlewares.traefik.io", "gate"),
        ("service", "notebook"),
    )
    wait_answer(url, 404, headers=bearer("alice"), timeout=GONE_WITHIN)
    assert stack.login(uuid).status_code == 409


# --- a web app, on the Gateway ---------------------------------------------------------------------

WEB_APP = (
    'mkdir -p "/tmp/www$EB_BASE_PATH" && printf %s "$NONCE" > "/tmp/www${EB_BASE_PATH}index.html" '
    "&& cd /tmp/www && exec python3 -m http.server 8000"
)


def test_a_web_app_answers_through_its_httproute_for_its_owner_only_and_goes_with_its_session(
    stack: SessionsStack,
) -> None:
    stack.use_routes(stack.routes(gateway=True))
    nonce = uuidlib.uuid4().hex
    request: dict[str, Any] = web_app_request(WEB_APP, 8000)
    request["executable"]["environment"] = {"NONCE": nonce}
    uuid = stack.accept(request)
    running = stack.reaches(uuid, "RUNNING")
    assert running["phase"] == "RUNNING", running
    path = f"/session/container/{uuid}/8000/"
    url = stack.edge.url + path
    [port] = running["executable"]["network"]["ports"]
    host, _, public_port = stack.edge.url.removeprefix("http://").partition(":")
    assert port["external"] == {"port": int(public_port), "addresses": [host]}
    assert port["path"] == path
    assert running["executable"]["access"][0]["locations"][0] == url
    route = stack.kube.get("httproute", f"eb-{uuid}-route", stack.owner_namespace())
    [parent] = route["status"]["parents"]
    assert {c["type"]: c["status"] for c in parent["conditions"]}["Accepted"] == "True"

    wait_answer(url, 200, nonce, headers=bearer("alice"), timeout=60)  # the server may still be starting
    assert answer(url)[0] == 401
    assert answer(url, bearer("bob"))[0] == 403

    # a login link redeemed by many at once works for exactly one of them
    link = stack.login(uuid).json()["url"]
    results: list[httpx.Response] = []

    def redeem() -> None:
        results.append(httpx.get(link, timeout=30))

    threads = [threading.Thread(target=redeem) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.status_code for r in results) == [302, 401, 401, 401, 401, 401]
    [won] = [r for r in results if r.status_code == 302]
    assert won.headers["location"] == url
    assert f"Path={path.rsplit('8000/', 1)[0]}" in won.headers["set-cookie"]
    with httpx.Client(cookies=won.cookies, timeout=30) as browser_like:
        assert (browser_like.get(url).status_code, browser_like.get(url).text) == (200, nonce)

    stack.cancel(uuid)
    assert stack.reaches(uuid, "CANCELLED")["phase"] == "CANCELLED"
    route_objects_gone(
        stack.kube,
        stack.owner_namespace(),
        uuid,
        ("httproute", "route"),
        ("middlewares.traefik.io", "gate"),
        ("service", "app"),
    )
    wait_answer(url, 404, headers=bearer("alice"), timeout=GONE_WITHIN)
    assert answer(url, bearer("alice"))[0] == 404  # and stays gone
