"""Helpers of the operator's integration tests: IVOA requests, and :class:`Broker`, which creates
CRs in a test's namespace and waits on them through watches (never sleeping to synchronise)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.kube import REAL_NODE, Kubectl, async_wait_for, wait_nodes_usable
from tests.support.reservations import with_offers

from eb_operator.cluster.crs import EXECUTIONS, OFFERSETS, Cluster, NotFound
from eb_operator.cluster.offer_status import find_offer, offer_execution
from eb_operator.model.times import parse_instant
from eb_operator.operator import Operator, OperatorConfig, serve
from eb_operator.operator.handlers import Runtime

API = "executionbroker.ivoa.net/v1alpha1"
DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0"
COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
IMAGE = "eb-workload:latest"
FINAL = ("REJECTED", "EXPIRED", "COMPLETED", "FAILED", "CANCELLED")
REAL_NODE_PLATFORM = {"nodeSelector": {"kubernetes.io/hostname": REAL_NODE}}
FAST = {"slotSeconds": 1, "preparationSeconds": 0, "releaseSeconds": 2}


def ivoa_request(
    command: Sequence[str] = ("sh", "-c", "exit 0"),
    cores: int = 1,
    memory: int = 1,
    duration: str = "PT1M",
    image: str = IMAGE,
    start: Sequence[str] | None = None,
    gpus: int = 0,
    max_cores: int | None = None,
) -> dict[str, Any]:
    """An ivoa-std OfferSetRequest for a docker container."""
    compute: dict[str, Any] = {
        "type": COMPUTE,
        "cores": {"requested": {"min": cores, **({"max": max_cores} if max_cores else {})}},
        "memory": {"requested": {"min": memory}},
    }
    if gpus:
        compute["gpus"] = {"requested": {"min": gpus}}
    schedule: dict[str, Any] = {"duration": duration}
    if start:
        schedule["start"] = list(start)
    exe: dict[str, Any] = {"type": DOCKER, "image": {"locations": [image]}}
    if command:
        exe |= {"entrypoint": command[0], "command": list(command[1:])}
    return {
        "executable": exe,
        "resources": {"compute": [compute]},
        "schedule": {"requested": schedule},
    }


def phase(obj: Mapping[str, Any]) -> str | None:
    """status.phase; an offer whose status is not written yet is OFFERED (its spec says so)."""
    spec = obj.get("spec") or {}
    implied = "OFFERED" if spec.get("reservation") and spec.get("offerSet") else None
    return (obj.get("status") or {}).get("phase") or implied


@dataclass
class Broker:
    cluster: Cluster
    kube: Kubectl
    namespace: str
    platform: str
    runner: OperatorThread | None = None
    nodes: list[str] = field(default_factory=list)
    offered: dict[str, dict[str, Any]] = field(default_factory=dict)  # offer name -> its answered set

    # -- creating ---------------------------------------------------------------------------

    async def offerset(self, name: str, req: Mapping[str, Any], owner: str | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"request": dict(req)}
        if owner:
            spec["owner"] = owner
        body = {"apiVersion": API, "kind": "OfferSet", "metadata": {"name": name}, "spec": spec}
        return await self.cluster.create(OFFERSETS, self.namespace, body)

    async def answered(self, name: str, timeout: float = 30) -> dict[str, Any]:  # noqa: ASYNC109
        answer = await self.cluster.watch_object(
            OFFERSETS, self.namespace, name, lambda o: bool((o.get("status") or {}).get("result")), timeout
        )
        self.offered |= {o["name"]: answer for o in answer["status"].get("offers") or []}
        return answer

    async def ask(self, name: str, req: Mapping[str, Any], timeout: float = 30) -> dict[str, Any]:  # noqa: ASYNC109
        await self.offerset(name, req)
        return await self.answered(name, timeout)

    async def direct(self, name: str, req: Mapping[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": API,
            "kind": "Execution",
            "metadata": {"name": name},
            "spec": {"request": dict(req)},
        }
        return await self.cluster.create(EXECUTIONS, self.namespace, body)

    async def desire(self, name: str, value: str) -> dict[str, Any]:
        """Ask for a phase: a patch of the Execution, or for an offer not yet written as one, an
        Execution naming the offer and its set, as a kubectl user writes it (no reservation: the
        operator copies it in from the set)."""
        if name in self.offered and not await self.written(name):
            offerset = self.offered[name]["metadata"]["name"]
            body = {
                "apiVersion": API,
                "kind": "Execution",
                "metadata": {"name": name},
                "spec": {"offerSet": offerset, "desiredPhase": value},
            }
            return await self.cluster.create(EXECUTIONS, self.namespace, body)
        return await self.cluster.patch(EXECUTIONS, self.namespace, name, {"spec": {"desiredPhase": value}})

    # -- reading ----------------------------------------------------------------------------

    async def written(self, name: str) -> bool:
        try:
            await self.cluster.get(EXECUTIONS, self.namespace, name)
        except NotFound:
            return False
        return True

    async def execution(self, name: str) -> dict[str, Any]:
        """The Execution ``name``; for an offer not written as one, the offer as the REST service
        shows it (its reservation, from the set's status)."""
        try:
            return await self.cluster.get(EXECUTIONS, self.namespace, name)
        except NotFound:
            offerset = self.offered.get(name)
            ref = find_offer(offerset, name) if offerset is not None else None
            if offerset is None or ref is None:
                raise
            return offer_execution(offerset, ref)

    async def executions(self) -> list[dict[str, Any]]:
        return list((await self.cluster.list(EXECUTIONS, self.namespace))["items"])

    async def held(self) -> list[Mapping[str, Any]]:
        """The Executions and the offers held in OfferSet statuses (``with_offers``)."""
        sets = (await self.cluster.list(OFFERSETS, self.namespace))["items"]
        return with_offers(await self.executions(), sets)

    async def until(
        self,
        name: str,
        check: Callable[[Mapping[str, Any]], bool],
        timeout: float = 60,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        return await self.cluster.watch_object(EXECUTIONS, self.namespace, name, check, timeout)

    async def reaches(self, name: str, *phases: str, timeout: float = 60) -> dict[str, Any]:  # noqa: ASYNC109
        return await self.until(name, lambda o: phase(o) in phases, timeout)

    async def settles(self, name: str, timeout: float = 90) -> dict[str, Any]:  # noqa: ASYNC109
        return await self.reaches(name, *FINAL, timeout=timeout)

    def holds(self, name: str) -> bool:
        """The operator counts the capacity of Execution or offer ``name`` as taken."""
        assert self.runner is not None
        return f"{self.namespace}/{name}" in self.runner.operator.state.ledger

    async def released(self, name: str, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Wait until the operator no longer counts ``name``'s capacity (an offer that lapsed, or
        whose sibling was accepted: no write says so, its capacity is simply free)."""
        await async_wait_for(lambda: not self.holds(name), timeout, f"the capacity of {name} to be free")

    async def lapsed(self, answer: Mapping[str, Any]) -> None:
        """Wait until the wall clock has passed the answered set's expiry."""
        expires = parse_instant(answer["status"]["expires"])
        await async_wait_for(
            lambda: time.time() >= expires, expires - time.time() + 10, "the offers to expire"
        )

    async def pod(self, execution: str) -> dict[str, Any] | None:
        try:
            return await self.cluster.get_pod(self.namespace, f"eb-{execution}")
        except NotFound:
            return None

    async def events(self, name: str) -> list[dict[str, Any]]:
        found = (await self.cluster.list_raw(f"/api/v1/namespaces/{self.namespace}/events"))["items"]
        return [e for e in found if e["involvedObject"]["name"] == name]

    async def event(self, name: str, reason: str, timeout: float = 20) -> dict[str, Any]:  # noqa: ASYNC109
        """The first Event about ``name`` with ``reason`` (Events are posted in the background)."""

        async def find() -> dict[str, Any] | None:
            return next((e for e in await self.events(name) if e["reason"] == reason), None)

        return await async_wait_for(find, timeout, f"a {reason} Event about {name}")


class OperatorThread:
    """The operator in-process, in a thread with its own event loop (kopf cancels every task of
    its loop created while it ran, so it must not share the test's loop)."""

    def __init__(self, config: OperatorConfig) -> None:
        self.config = config
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.runtime: list[Runtime] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"operator-{config.platform}", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(
                serve(
                    self.config,
                    peering=False,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                    runtime=self.runtime,
                )
            )
        except BaseException as e:  # reported by start()/stop()
            self.error = e
            self.ready_flag.set()

    @property
    def operator(self) -> Operator:
        op = self.runtime[0].operator if self.runtime else None
        assert op is not None, "the operator has not started"
        return op

    async def start(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        self.thread.start()
        if not await asyncio.to_thread(self.ready_flag.wait, timeout) or self.error is not None:
            raise RuntimeError(f"the operator did not start: {self.error!r}")

    async def stop(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        self.stop_flag.set()
        await asyncio.to_thread(self.thread.join, timeout)
        if self.thread.is_alive():
            raise RuntimeError("the operator did not stop")


async def nodes_ready(kube: Kubectl, platform: str, count: int) -> None:
    """Until the broker fixture's ``count`` kwok nodes can be used (:func:`wait_nodes_usable`)."""
    await asyncio.to_thread(wait_nodes_usable, kube, f"eb-test-platform={platform}", count)
