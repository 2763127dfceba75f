"""What a user of the installed broker does, as functions: ask, accept, follow, look at Pods."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.install import API_VERSION, Installation
from tests.support.kube import KWOK_ANNOTATION, REAL_NODE, Kubectl, is_local_cluster, wait_for

from eb_operator.client import FINAL_PHASES, BrokerClient, BrokerError, offer_request
from eb_operator.client.requests import COMPUTE, DOCKER

WORKLOAD_IMAGE = "eb-workload:latest"


def start_of(offer: Mapping[str, Any]) -> str:
    return str(((offer.get("schedule") or {}).get("executing") or {}).get("start") or "")


def earliest(offers: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    assert offers, "the broker made no offer"
    return min(offers, key=start_of)


@dataclass
class User:
    """A REST user and what they started, so a test leaves no capacity held behind it."""

    client: BrokerClient
    image: str = WORKLOAD_IMAGE
    sessions: list[str] = field(default_factory=list)

    def ask(self, command: Sequence[str], *, capacity_wait: float = 180, **kw: Any) -> dict[str, Any]:
        """Ask for offers. A NO for want of free capacity (Pods of others on a shared node, our own
        earlier sessions still releasing) is asked again, as a user would, for ``capacity_wait`` s."""
        kw.setdefault("duration", "PT2M")
        request = offer_request(image=self.image, command=command, **kw)

        def answer() -> dict[str, Any] | None:
            got = self.client.create_offerset(request)
            busy = got.get("result") == "NO" and any(
                str(m.get("type", "")).endswith("no-capacity") for m in got.get("messages") or []
            )
            return None if busy else got

        try:
            got = wait_for(answer, capacity_wait, "free capacity for the request", interval=2)
        except TimeoutError:
            got = self.client.create_offerset(request)
        self.sessions += [str(o["uuid"]) for o in got.get("offers") or []]
        return got

    def run(self, command: Sequence[str], **kw: Any) -> dict[str, Any]:
        """Ask, and accept the earliest offer; returns the accepted session."""
        answer = self.ask(command, **kw)
        assert answer.get("result") == "YES", answer
        return self.client.accept(str(earliest(answer["offers"])["uuid"]))

    def follow(self, uuid: str, timeout: float, until: frozenset[str] = FINAL_PHASES) -> dict[str, Any]:
        """The session once it reaches one of ``until`` (polled through the REST API)."""
        last: dict[str, Any] = {}
        for doc in self.client.watch(uuid, interval=0.5, timeout=timeout):
            last = doc
            if doc.get("phase") in until:
                return doc
        return last

    def tidy(self) -> None:
        """Reject what is still offered, cancel what is still to run."""
        for uuid in self.sessions:
            with contextlib.suppress(BrokerError):
                phase = self.client.session(uuid).get("phase")
                if phase == "OFFERED":
                    self.client.reject(uuid)
                elif phase not in FINAL_PHASES:
                    self.client.cancel(uuid)


@contextlib.contextmanager
def user(installed: Installation, name: str = "alice") -> Iterator[User]:
    with BrokerClient(installed.url(), installed.tokens[name], timeout=60) as c:
        u = User(c)
        try:
            yield u
        finally:
            u.tidy()


def execution_doc(
    name: str, namespace: str, command: Sequence[str], duration: str = "PT2M"
) -> dict[str, Any]:
    """An Execution a user applies with kubectl: a direct request, no OfferSet."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Execution",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "request": {
                "executable": {
                    "type": DOCKER,
                    "image": {"locations": [WORKLOAD_IMAGE]},
                    "entrypoint": command[0],
                    "command": list(command[1:]),
                },
                "resources": {
                    "compute": [
                        {
                            "type": COMPUTE,
                            "cores": {"requested": {"min": 1}},
                            "memory": {"requested": {"min": 1}},
                        }
                    ]
                },
                "schedule": {"requested": {"duration": duration}},
            }
        },
    }


def pod_of(kube: Kubectl, namespace: str, execution: str) -> dict[str, Any]:
    """The Pod of Execution ``execution`` of ``namespace``, where its children live: its owner's
    namespace for a REST session (``status.childNamespace``), else beside it."""
    found = kube.get("execution", execution, namespace)
    where = (found.get("status") or {}).get("childNamespace") or namespace
    pod: dict[str, Any] = kube.get("pod", f"eb-{execution}", where)
    return pod


def _terminated(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    found: Mapping[str, Any] = (statuses[0].get("state") or {}).get("terminated") or {}
    return found


def assert_ran_on_a_real_node(kube: Kubectl, pod: Mapping[str, Any]) -> str:
    """The Pod ran on a node with a kubelet (not a kwok fake) and its container exited 0; returns
    the node. (The session may read COMPLETED from the container's exit a moment before the
    kubelet reports it in every field, so the container's terminated state is waited for.)"""
    meta = pod["metadata"]
    pod = wait_for(
        lambda: _terminated(p := kube.get("pod", meta["name"], meta["namespace"])) and p,
        60,
        f"the container of Pod {meta['namespace']}/{meta['name']} to have terminated",
    )
    node_name = pod["spec"].get("nodeName")
    assert node_name, f"the Pod was never scheduled: {pod.get('status')}"
    node = kube.get("node", node_name)
    fake = set(KWOK_ANNOTATION.items()) <= set((node["metadata"].get("annotations") or {}).items())
    assert not fake, f"{node_name} is a kwok node"
    if is_local_cluster(Path(kube.kubeconfig)):
        assert node_name == REAL_NODE
    terminated = _terminated(pod)
    assert terminated.get("exitCode") == 0, terminated
    return str(node_name)
