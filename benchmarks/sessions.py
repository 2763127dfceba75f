"""Sessions opened from outside the cluster, on the local cluster: prints one JSON document.

    python benchmarks/sessions.py [--sessions 20] [--out benchmarks/results/sessions.json]

A broker (``tests.support.sessions``: the REST API in-process, the operator as a subprocess) on
the real node, its routes through the cluster's Traefik. ``--sessions`` notebook sessions with a
route and as many without, taken in turn (with, without, with, ...) so that the machine's noise
falls on both alike, one at a time. For each:

* ``accept_to_ready_s``: from the client's accept (``POST /sessions/<uuid>``) to the client seeing
  READY (``GET /sessions/<uuid>`` every 50 ms): the notebook server answers its readiness probe;
* ``accept_to_url_200_s`` (routed only): from the accept to the session's public URL
  (``<ingress>/session/notebook/<uuid>/lab``, through Traefik and the gate, with the owner's bearer
  token) answering 200, polled every 50 ms: what a user waits for before JupyterLab opens.

``route_added_to_ready_s``: p50 and p99 of the routed sessions' accept-to-READY minus the same of
the unrouted ones (target: at most 1 s). The operator makes a session's route objects when it
prepares, before its Pod; the notebook server's start (seconds) dominates both.

Needs the local cluster with Traefik (``hack/cluster.sh up``) and ``eb-notebook:latest``
(``hack/build-test-images.sh``, run here when missing). Every wait is bounded; everything made
is deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.ingress import ingress  # noqa: E402
from tests.support.kube import Kubectl, find_kubeconfig, wait_for  # noqa: E402
from tests.support.sessions import TOKENS, SessionsStack, notebook_request, sessions_stack  # noqa: E402

from reporting import emit, percentile  # noqa: E402

POLL = 0.05


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": percentile(values, 50, 3),
        "p99": percentile(values, 99, 3),
        "mean": round(statistics.mean(values), 3),
        "max": round(max(values), 3),
    }


def one(stack: SessionsStack, routed: bool) -> dict[str, float]:
    """One notebook session: accept, READY (and the URL answering 200), then cancel it and wait
    for its Pod to be gone, so the next one has the node to itself."""
    with stack.client("alice") as c:
        r = c.post("/offersets", json=notebook_request(duration="PT10M"))
        assert r.status_code == 303, r.text
        uuid = r.json()["offers"][0]["uuid"]
        body = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": "ACCEPTED"}}
        t0 = time.monotonic()
        assert c.post(f"/sessions/{uuid}", json=body).status_code == 200

        def ready() -> float | None:
            phase = c.get(f"/sessions/{uuid}").json()["phase"]
            assert phase not in ("FAILED", "CANCELLED", "COMPLETED"), phase
            return time.monotonic() if phase == "READY" else None

        out = {"accept_to_ready_s": wait_for(ready, 300, f"session {uuid} READY", interval=POLL) - t0}
        if routed:
            url = f"{stack.edge.url}/session/notebook/{uuid}/lab"
            auth = {"Authorization": f"Bearer {TOKENS['alice']}"}

            def answers() -> float | None:
                return (
                    time.monotonic() if httpx.get(url, headers=auth, timeout=10).status_code == 200 else None
                )

            out["accept_to_url_200_s"] = wait_for(answers, 300, f"{url} to answer 200", interval=POLL) - t0
        body["update"]["value"] = "CANCELLED"
        assert c.post(f"/sessions/{uuid}", json=body).status_code == 200
    wait_for(
        lambda: (
            not stack.kube.exists("pod", f"eb-{uuid}", stack.owner_namespace())
            or stack.kube.get("pod", f"eb-{uuid}", stack.owner_namespace())["status"].get("phase")
            in ("Succeeded", "Failed")
        ),
        120,
        f"the Pod of {uuid} to stop",
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sessions", type=int, default=20, help="notebook sessions with a route (and as many without)"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    edge = ingress()
    if edge is None:
        print(
            "no ingress: the local cluster's Traefik (hack/cluster.sh up) writes ingress.env", file=sys.stderr
        )
        return 2
    subprocess.run(["bash", str(REPO / "hack" / "build-test-images.sh")], check=True, timeout=1800)
    kube = Kubectl(str(find_kubeconfig()))
    samples: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        sessions_stack(kube, edge, Path(tmp) / "operator.log") as stack,
    ):
        one(stack, True)  # warm-up: images in the page cache, the API's and Traefik's first requests
        for i in range(2 * args.sessions):
            routed = i % 2 == 0
            stack.use_routes(stack.routes() if routed else None)
            samples[routed].append(one(stack, routed))
    ready_with = [s["accept_to_ready_s"] for s in samples[True]]
    ready_without = [s["accept_to_ready_s"] for s in samples[False]]
    added = {
        "p50": round(percentile(ready_with, 50, 3) - percentile(ready_without, 50, 3), 3),
        "p99": round(percentile(ready_with, 99, 3) - percentile(ready_without, 99, 3), 3),
        "target": 1.0,
    }
    report = {
        "benchmark": "sessions",
        "date": time.strftime("%Y-%m-%d"),
        "command": f"python benchmarks/sessions.py --sessions {args.sessions}",
        "routed": {
            "accept_to_ready_s": summary(ready_with),
            "accept_to_url_200_s": summary([s["accept_to_url_200_s"] for s in samples[True]]),
        },
        "unrouted": {"accept_to_ready_s": summary(ready_without)},
        "route_added_to_ready_s": added,
    }
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
