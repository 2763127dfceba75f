"""Scenario 2: one of two API replicas (``eb-operator api`` processes) SIGKILLed under load.

Clients that prefer one replica or the other ask for offers, reject one or accept and cancel
it, and read the session back; a request that fails to connect (or whose connection dies) is
retried on the other replica. Nobody sees a 5xx; the only failures are connection errors to the
killed replica after its death; nothing a client was answered is lost (every offer set and
session answered is there, in the phase the client set, read through the survivor). Then the
checker. Bounded: ~1 min.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.chaos.checker import PodRecorder, check
from tests.chaos.stage import OperatorProcess, kwok_platform
from tests.integration.api.stack import free_port
from tests.support.kube import REPO, Kubectl, wait_for

pytestmark = pytest.mark.timeout(300)

TOKEN = "chaos-token-0123456789"
CLIENTS = 6
BEFORE, AFTER = 8.0, 10.0  # seconds of load before and after the kill
SPEC = {
    "slotSeconds": 1,
    "preparationSeconds": 0,
    "releaseSeconds": 1,
    "offerTtlSeconds": 60,
    "maxOffers": 2,
    "sharing": {"ownerLimits": {}},  # one caller at full speed: the limits per owner would be the test
}
STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
REQUEST = {
    "name": "chaos",
    "executable": {
        "type": STD + "executables/docker-container-1.0",
        "image": {"locations": ["eb-workload:latest"]},
        "entrypoint": "sleep",
    },
    "resources": {
        "compute": [
            {
                "type": STD + "resources/compute/simple-compute-resource-1.0",
                "name": "compute-1",
                "cores": {"requested": {"min": 1}},
                "memory": {"requested": {"min": 1}},
            }
        ]
    },
    "schedule": {"requested": {"duration": "PT10M"}},
}
JSON_H = {"Accept": "application/json"}


@contextmanager
def api_replicas(
    kube: Kubectl, namespace: str, logs: Path, ports: list[int]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "EB_API_NAMESPACE": namespace,
        "EB_API_KUBECONFIG": str(kube.kubeconfig),
        "EB_API_STATIC_TOKENS": f"{TOKEN},alice",
        "EB_API_TOKEN_REVIEW": "false",
        "EB_API_ALLOW_ANONYMOUS": "false",
        "EB_API_ANSWER_TIMEOUT_SECONDS": "20",
    }
    procs = []
    try:
        for i, port in enumerate(ports):
            with (logs / f"api-{i}.log").open("wb") as out:
                argv = [
                    sys.executable,
                    "-m",
                    "eb_operator.cli",
                    "api",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ]
                procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO))
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()


@dataclass
class Tally:
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)  # replica -> status -> count
    refused: list[str] = field(default_factory=list)  # connection errors: "replica at t: error"
    bad: list[str] = field(default_factory=list)
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)  # offer set uuid -> answer
    expected: dict[str, str] = field(default_factory=dict)  # session uuid -> phase the client set


class Clients:
    def __init__(self, urls: list[str], t0: float) -> None:
        self.urls = urls
        self.t0 = t0
        self.tally = Tally()
        self.http = httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

    async def call(
        self, prefer: int, method: str, path: str, body: Any = None
    ) -> tuple[httpx.Response, bool]:
        """The first answer, trying the preferred replica and then the other; True if retried."""
        retried = False
        for i in (prefer, 1 - prefer):
            url = self.urls[i]
            try:
                r = await self.http.request(method, url + path, json=body, headers=JSON_H)
            except httpx.TransportError as e:
                self.tally.refused.append(f"{i} at {time.monotonic() - self.t0:.2f}: {type(e).__name__}")
                retried = True
                continue
            self.tally.statuses.setdefault(str(i), {}).setdefault(r.status_code, 0)
            self.tally.statuses[str(i)][r.status_code] += 1
            if r.status_code >= 500:
                self.tally.bad.append(f"{method} {path} on replica {i}: {r.status_code} {r.text[:200]}")
            return r, retried
        raise AssertionError(f"{method} {path}: neither replica answered")

    async def session(self, prefer: int, uuid: str, value: str) -> None:
        body = {"update": {"type": "uri:enum-value-update", "path": "phase", "value": value}}
        r, retried = await self.call(prefer, "POST", f"/sessions/{uuid}", body)
        # a retry after a dropped connection may find its first attempt already applied: 409
        ok = r.status_code == 200 or (retried and r.status_code == 409)
        if not ok:
            self.tally.bad.append(f"{value} {uuid}: {r.status_code} {r.text[:200]}")
        self.tally.expected[uuid] = value

    async def client(self, prefer: int, until: float, pick: Callable[[], bool]) -> None:
        while time.monotonic() < until:
            r, _ = await self.call(prefer, "POST", "/offersets", REQUEST)
            if r.status_code != 303:
                self.tally.bad.append(f"POST /offersets: {r.status_code} {r.text[:200]}")
                continue
            doc = r.json()
            self.tally.answered[doc["uuid"]] = doc
            if not doc["offers"]:  # the platform is sized for YES: a NO is a finding, with its reason
                self.tally.bad.append(f"POST /offersets: NO {[m['message'] for m in doc['messages']]}")
                continue
            first = doc["offers"][0]["uuid"]
            if pick():
                await self.session(prefer, first, "REJECTED")
            else:
                await self.session(prefer, first, "ACCEPTED")
                await self.session(prefer, first, "CANCELLED")


async def test_an_api_replica_killed_under_load(
    crds: None, kube: Kubectl, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    ns = make_namespace("chaos-api")
    with kwok_platform(kube, ns, "chaos-api", nodes=2, spec=SPEC, cpu="32") as stage:
        op = OperatorProcess(kube, stage, tmp_path / "operator.log")
        recorder = PodRecorder(kube.kubeconfig, ns)
        op.start()
        try:
            ports = [free_port(), free_port()]
            with api_replicas(kube, ns, tmp_path, ports) as procs:
                urls = [f"http://127.0.0.1:{p}" for p in ports]
                for u in urls:
                    wait_for(
                        lambda u=u: httpx.get(f"{u}/readyz", timeout=5).status_code == 200, 60, f"{u} ready"
                    )
                await asyncio.to_thread(op.wait_started, 90)
                async with recorder.running():
                    t0 = time.monotonic()
                    clients = Clients(urls, t0)
                    flips = iter([i % 2 == 0 for i in range(10_000)])
                    load = asyncio.gather(
                        *(
                            clients.client(i % 2, t0 + BEFORE + AFTER, lambda: next(flips))
                            for i in range(CLIENTS)
                        )
                    )
                    await asyncio.sleep(BEFORE)  # the load runs meanwhile: this is the moment of the kill
                    procs[0].send_signal(signal.SIGKILL)
                    killed_at = time.monotonic() - t0
                    await load
                    took = time.monotonic() - t0
                    # nothing lost: everything answered reads back through the survivor
                    lost = []
                    for uuid, doc in clients.tally.answered.items():
                        r = await clients.http.get(f"{urls[1]}/offersets/{uuid}", headers=JSON_H)
                        offers = (
                            {o["uuid"] for o in r.json().get("offers", [])} if r.status_code == 200 else set()
                        )
                        if r.status_code != 200 or offers != {o["uuid"] for o in doc["offers"]}:
                            lost.append(f"offer set {uuid}: {r.status_code}")
                    for uuid, want in clients.tally.expected.items():
                        r = await clients.http.get(f"{urls[1]}/sessions/{uuid}", headers=JSON_H)
                        if r.status_code != 200 or r.json().get("phase") != want:
                            lost.append(f"session {uuid}: {r.status_code} {r.text[:120]} (wanted {want})")
                    await clients.http.aclose()
            executions = {
                e["metadata"]["uid"]: e["metadata"]["name"] for e in kube.get("executions", None, ns)["items"]
            }
            report = check(kube, ns, stage.nodes, time.time(), pod_uids=recorder.by_execution(executions))
        finally:
            op.stop()

    t = clients.tally
    requests = sum(sum(s.values()) for s in t.statuses.values())
    print(
        f"API replica kill: {CLIENTS} clients for {took:.0f} s, replica 0 SIGKILLed at {killed_at:.1f} s; "
        f"{requests} answers {t.statuses}, {len(t.answered)} offer sets, {len(t.expected)} sessions; "
        f"{len(t.refused)} connection errors {t.refused[:5]}; checker: {report}"
    )
    assert not t.bad, t.bad
    early = [e for e in t.refused if not e.startswith("0 ") or float(e.split()[2][:-1]) < killed_at]
    assert not early, f"connection errors other than to the killed replica after its death: {early}"
    assert t.refused, "the killed replica was never asked again: the test did not test the retry"
    assert set(t.statuses) == {"0", "1"}, f"both replicas must have served: {t.statuses}"
    assert not lost, lost
    assert not report.problems, report
