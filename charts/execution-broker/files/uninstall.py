"""helm pre-delete hook of the execution-broker chart: cancel everything the broker holds.

Deletes every OfferSet and Execution in the given namespaces (the release's session namespaces;
never cluster-wide), which garbage-collects their Pods through ownerReferences and frees their
reservations, and the owner namespaces its operator made for REST sessions (``--owner-namespaces``,
a label selector naming its platform), then waits until no Pod the broker made (label
app.kubernetes.io/managed-by=eb-operator) is left in any of them. Standard library only; talks to
the API server with the Pod's service-account token.

    python3 uninstall.py [--timeout SECONDS] [--owner-namespaces SELECTOR] NAMESPACE [NAMESPACE ...]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
GROUP = "/apis/executionbroker.ivoa.net/v1alpha1"
POD_SELECTOR = "app.kubernetes.io/managed-by=eb-operator"
#: OfferSets first: their offers go with them; then every Execution (direct requests too).
KINDS = ("offersets", "executions")
Obj = dict[str, Any]


class Api:
    def __init__(self) -> None:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.base = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
        with open(f"{SA}/token", encoding="utf-8") as f:
            self.token = f.read().strip()
        self.tls = ssl.create_default_context(cafile=f"{SA}/ca.crt")

    def call(self, method: str, path: str, body: Obj | None = None) -> Obj:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self.tls, timeout=60) as resp:
                out: Obj = json.loads(resp.read() or b"{}")
                return out
        except urllib.error.HTTPError as e:
            if e.code == 404:  # the CRDs (or the namespace) are gone: nothing to do there
                return {"items": []}
            raise


def collection(kind: str, namespace: str) -> str:
    return f"{GROUP}/namespaces/{namespace}/{kind}"


def pods_path(namespace: str) -> str:
    q = urllib.parse.urlencode({"labelSelector": POD_SELECTOR})
    return f"/api/v1/namespaces/{namespace}/pods?{q}"


def first_page(path: str, limit: int = 20) -> str:
    return f"{path}{'&' if '?' in path else '?'}limit={limit}"


def names(items: list[Obj]) -> list[str]:
    return sorted(f"{i['metadata'].get('namespace')}/{i['metadata']['name']}" for i in items)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--timeout", type=float, default=180)
    p.add_argument("--owner-namespaces", default="", help="label selector of the owner namespaces")
    p.add_argument("namespaces", nargs="+")
    args = p.parse_args(argv)
    api = Api()
    deadline = time.monotonic() + args.timeout
    owners: list[str] = []
    if args.owner_namespaces:
        q = urllib.parse.urlencode({"labelSelector": args.owner_namespaces})
        owners = [n["metadata"]["name"] for n in api.call("GET", f"/api/v1/namespaces?{q}").get("items", [])]

    def listed(path_of: Callable[[str], str]) -> list[Obj]:
        """Up to a page of what is left in each namespace: enough to know whether anything is,
        and to name some of it (20,000 OfferSets, ~100 MB of JSON, would not fit this Pod)."""
        return [
            i for ns in args.namespaces for i in api.call("GET", first_page(path_of(ns))).get("items", [])
        ]

    def delete(kind: str) -> None:
        for ns in args.namespaces:
            try:
                api.call("DELETE", collection(kind, ns), {"propagationPolicy": "Background"})
            except urllib.error.HTTPError:
                raise
            except (TimeoutError, urllib.error.URLError) as e:
                # thousands of objects outlast one request; the loop below asks again
                print(f"deleting the {kind} of {ns}: {e}; will ask again", flush=True)

    def left() -> dict[str, list[Obj]]:
        out = {kind: listed(functools.partial(collection, kind)) for kind in KINDS}
        pods = listed(pods_path) + [
            i for ns in owners for i in api.call("GET", first_page(pods_path(ns))).get("items", [])
        ]
        return out | {"pods": pods}

    for kind in KINDS:
        delete(kind)
        print(f"deleting the {kind} of {', '.join(args.namespaces)}", flush=True)
    for ns in owners:  # every session there goes with its namespace
        api.call("DELETE", f"/api/v1/namespaces/{ns}", {"propagationPolicy": "Background"})
        print(f"deleting the owner namespace {ns}", flush=True)
    still = left()
    while any(still.values()):
        if time.monotonic() > deadline:
            what = ", ".join(f"{kind} {names(items)}" for kind, items in still.items() if items)
            print(f"timed out; still there: {what}", file=sys.stderr)
            return 1
        time.sleep(1)  # polling the API server until the garbage collector is done
        for kind in KINDS:
            if still[kind]:
                delete(kind)
        still = left()
    print("no broker sessions or Pods left", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
