"""The operator's in-memory picture: capacity from nodes and Pods, the ledger from Executions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from eb_operator.cluster.convert import cpu_millis, pod_requests, whole
from eb_operator.engine.types import GIB, Phase, Resources
from eb_operator.model.platform import PlatformPolicy, Toleration
from eb_operator.model.times import format_duration, parse_duration
from eb_operator.operator.state import SHUTDOWN_HOLD, ClusterState, execution_view
from eb_operator.operator.workqueue import Retry, WorkQueue

pytestmark = pytest.mark.unit


def node(name: str, cpu: str = "8", ready: bool = True, taint: str | None = None) -> dict[str, Any]:
    spec = {"taints": [{"key": taint, "effect": "NoSchedule"}]} if taint else {}
    return {
        "metadata": {"name": name, "labels": {"pool": "a"}, "resourceVersion": "1"},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": "32Gi", "nvidia.com/gpu": "1"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(
    name: str, on: str, cpu: str, labels: dict[str, str] | None = None, phase: str = "Running"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "labels": labels or {}},
        "spec": {"nodeName": on, "containers": [{"resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]},
        "status": {"phase": phase},
    }


def execution(name: str, rv: int, uid: str = "u1", phase: str | None = None, **spec: Any) -> dict[str, Any]:
    reservation = {
        "node": "n1",
        "prepareStart": "2030-01-01T00:00:00Z",
        "start": "2030-01-01T00:00:00Z",
        "duration": "PT1H",
        "releaseEnd": "2030-01-01T01:00:00Z",
        "cores": 2,
        "memoryGiB": 4,
    }
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(rv),
            "generation": 1,
        },
        "spec": {"reservation": reservation, **spec},
        "status": {"phase": phase} if phase else {},
    }


BROKER = {"app.kubernetes.io/managed-by": "eb-operator", "executionbroker.ivoa.net/execution-uid": "u1"}


def free_cpu(state: ClusterState, name: str = "n1") -> int:
    found = state.node_table(PlatformPolicy()).get(name)
    assert found is not None
    return found.free.cpu_millis


def test_pods_the_broker_does_not_own_shrink_free_capacity_until_they_finish() -> None:
    s = ClusterState()
    s.on_node(node("n1"))
    s.on_pod(pod("web", "n1", "1500m"))
    assert free_cpu(s) == 6500
    s.on_pod(pod("web", "n1", "1500m", phase="Succeeded"))
    assert free_cpu(s) == 8000


def test_a_broker_pod_is_covered_by_its_reservation_unless_its_execution_is_not_ours() -> None:
    s = ClusterState()
    s.on_node(node("n1"))
    s.on_pod(pod("eb-x", "n1", "2", BROKER))
    assert free_cpu(s) == 6000  # no Execution of ours owns it (yet): foreign
    s.on_execution(execution("x", 5, phase="RUNNING"))
    assert free_cpu(s) == 8000  # now its reservation holds the capacity instead
    assert len(s.ledger) == 1
    s.on_execution(execution("x", 6), deleted=True)
    assert free_cpu(s) == 6000


def test_a_pod_whose_containers_all_ended_holds_nothing_before_its_final_phase_is_written() -> None:
    """A session ends; its Execution is deleted at once; the Pod's phase is still Running for a
    moment: its node is free for the next request (counted as foreign use, it would give NO)."""
    s = ClusterState()
    s.on_node(node("n1"))
    s.on_execution(execution("x", 5, phase="COMPLETED"))
    s.on_execution(execution("x", 6), deleted=True)
    ended = pod("eb-x", "n1", "2", BROKER)
    ended["spec"]["restartPolicy"] = "Never"
    ended["status"]["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": 0}}}]
    s.on_pod(ended)
    assert free_cpu(s) == 8000
    running = pod("eb-x", "n1", "2", BROKER)
    running["spec"]["restartPolicy"] = "Never"
    running["status"]["containerStatuses"] = [{"name": "main", "state": {"running": {}}}]
    s.on_pod(running)
    assert free_cpu(s) == 6000  # still running: foreign use until it ends
    restarts = pod("web", "n1", "1", phase="Running")
    restarts["status"]["containerStatuses"] = [{"name": "c", "state": {"terminated": {"exitCode": 1}}}]
    s.on_pod(restarts)
    assert free_cpu(s) == 5000  # restartPolicy Always: a terminated container comes back


def test_not_ready_unschedulable_and_foreign_tainted_nodes_are_not_offered() -> None:
    s = ClusterState()
    s.on_node(node("ok"))
    s.on_node(node("down", ready=False))
    s.on_node(node("other", taint="someone-else"))
    s.on_node(node("ours", taint="broker"))
    names = {n.name for n in s.node_table(PlatformPolicy(toleration=Toleration(key="broker")))}
    assert names == {"ok", "ours"}


def test_an_older_event_never_undoes_a_newer_view() -> None:
    s = ClusterState()
    s.on_execution(execution("x", 10, phase="ACCEPTED"))
    s.on_execution(execution("x", 9, phase="OFFERED", offerSet="set"))
    assert s.executions["ns/x"].phase == Phase.ACCEPTED


def test_final_phases_release_their_reservation_and_status_less_offers_hold_one() -> None:
    s = ClusterState()
    s.on_execution(execution("x", 1, offerSet="set"))
    assert s.executions["ns/x"].phase == Phase.OFFERED
    assert "ns/x" in s.ledger
    s.on_execution(execution("x", 2, phase="EXPIRED", offerSet="set"))
    assert "ns/x" not in s.ledger


def test_siblings_are_the_other_offers_of_the_same_set() -> None:
    s = ClusterState()
    for i in range(3):
        s.on_execution(execution(f"o{i}", 1, uid=f"u{i}", offerSet="set"))
    s.on_execution(execution("alone", 1, uid="u9"))
    assert [v.name for v in s.siblings(s.executions["ns/o1"])] == ["o0", "o2"]
    assert s.siblings(s.executions["ns/alone"]) == []


@pytest.mark.parametrize(
    ("text", "millis"), [("500m", 500), ("2", 2000), ("1.5", 1500), ("100u", 1)], ids=str
)
def test_cpu_quantities(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "n"), [("1Gi", GIB), ("128974848", 128974848), ("1e3", 1000), ("129M", 129 * 10**6)]
)
def test_byte_quantities(text: str, n: int) -> None:
    assert whole(text) == n


@pytest.mark.parametrize("seconds", [0, 1, 59, 3600, 7200, 90061, 86400 * 3])
def test_durations_round_trip(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_a_pod_requests_the_larger_of_its_containers_and_its_biggest_init_container() -> None:
    p = {
        "spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "1"}}},
                {"resources": {"limits": {"cpu": "500m", "nvidia.com/gpu": "1"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
        }
    }
    r = pod_requests(p)
    assert r.cpu_millis == 2000
    assert r.gpus == {"nvidia.com/gpu": 1}


async def test_a_key_is_never_processed_twice_at_once_and_is_redone_when_marked_meanwhile() -> None:
    running: set[str] = set()
    seen: list[str] = []
    gate, second = asyncio.Event(), asyncio.Event()

    async def handle(key: str) -> None:
        assert key not in running
        running.add(key)
        seen.append(key)
        if len(seen) == 1:
            await gate.wait()
        running.discard(key)
        if len(seen) == 2:
            second.set()

    q: WorkQueue[str] = WorkQueue("t", handle, workers=4)
    q.start()
    q.add("a")
    await asyncio.sleep(0)  # let a worker take it
    q.add("a")  # marked while active: done again afterwards, never concurrently
    q.add("a")
    gate.set()
    async with asyncio.timeout(5):
        await second.wait()
    await q.stop()
    assert seen == ["a", "a"]


async def test_a_retry_brings_the_key_back_later() -> None:
    calls: list[float] = []
    again = asyncio.Event()

    async def handle(key: str) -> None:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            raise Retry(0.05)
        again.set()

    q: WorkQueue[str] = WorkQueue("t", handle, workers=1)
    q.start()
    q.add("k")
    async with asyncio.timeout(5):
        await again.wait()
    await q.stop()
    assert calls[1] - calls[0] >= 0.04


def test_an_ended_session_holds_its_reservation_until_its_pod_is_gone() -> None:
    """Cancelled while running: its Pod shuts down for a while (the scheduler still counts it), so
    its capacity is not given to the next session until the Pod has gone."""
    now = [1_800_000_000.0]  # 2027, before the reservation's offered start (2030)
    s = ClusterState(clock=lambda: now[0])
    s.on_node(node("n1"))
    s.on_execution(execution("x", 5, phase="RUNNING"))
    running = pod("eb-x", "n1", "2", BROKER)
    s.on_pod(running)
    offered = s.ledger.get("ns/x")
    assert offered is not None
    s.on_execution(execution("x", 6, phase="CANCELLED"))
    held = s.ledger.get("ns/x")
    assert held is not None
    assert held.phase == Phase.RELEASING
    # for the Pod's shutdown only, from now: not to the end it was offered
    assert (held.start, held.end) == (1_800_000_000, 1_800_000_000 + SHUTDOWN_HOLD)
    assert held.end < offered.end
    deleting = pod("eb-x", "n1", "2", BROKER)
    deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:10:00Z"
    s.on_pod(deleting)
    assert "ns/x" in s.ledger, "a Pod being deleted is still there"
    s.on_pod(deleting, deleted=True)
    assert "ns/x" not in s.ledger


def test_a_session_deleted_before_its_end_holds_all_of_it_while_its_pod_goes() -> None:
    """Deleted while running (not ended: no final phase written), its Pod shuts down: it holds its
    whole reservation, as the checker of the chaos tests and any client reading it still see it,
    until the Pod is gone; only an ended session gives the rest of its time back at once."""
    s = ClusterState(clock=lambda: 1_800_000_000.0)
    s.on_node(node("n1"))
    s.on_execution(execution("x", 5, phase="RUNNING"))
    s.on_pod(pod("eb-x", "n1", "2", BROKER))
    offered = s.ledger.get("ns/x")
    deleted = execution("x", 6, phase="RUNNING")
    deleted["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    s.on_execution(deleted)
    held = s.ledger.get("ns/x")
    assert held is not None
    assert offered is not None
    assert (held.phase, held.start, held.end) == (Phase.RELEASING, offered.start, offered.end)
    s.on_pod(pod("eb-x", "n1", "2", BROKER), deleted=True)
    assert "ns/x" not in s.ledger


def test_an_ended_session_whose_pod_finished_holds_nothing() -> None:
    s = ClusterState()
    s.on_node(node("n1"))
    s.on_pod(pod("eb-x", "n1", "2", BROKER, phase="Succeeded"))
    s.on_execution(execution("x", 5, phase="COMPLETED"))
    assert "ns/x" not in s.ledger
    s.on_execution(execution("y", 5, uid="u2", phase="FAILED"))
    assert "ns/y" not in s.ledger, "no Pod at all"


def test_crowded_counts_what_the_scheduler_counts_on_the_node() -> None:
    """Every Pod bound to the node and not in a final phase, also one being deleted or one whose
    containers ended before the kubelet wrote its phase; not a Succeeded one, nor another node's."""
    s = ClusterState()
    s.on_node(node("n1", cpu="4"))
    s.on_node(node("n2", cpu="4"))
    s.on_pod(pod("web", "n1", "1"))
    ending = pod("eb-x", "n1", "2", BROKER)
    ending["metadata"]["deletionTimestamp"] = "2030-01-01T00:10:00Z"
    ending["spec"]["restartPolicy"] = "Never"
    ending["status"]["containerStatuses"] = [{"name": "main", "state": {"terminated": {"exitCode": 0}}}]
    s.on_pod(ending)
    s.on_pod(pod("done", "n1", "3", phase="Succeeded"))
    s.on_pod(pod("other", "n2", "3"))
    two = Resources(cpu_millis=2000)
    one = Resources(cpu_millis=1000)
    assert s.crowded("n1", one) is None
    why = s.crowded("n1", two)
    assert why is not None
    assert "cpu" in why
    assert "ns/eb-x" in why
    s.on_pod(ending, deleted=True)
    assert s.crowded("n1", two) is None
    assert s.crowded("unknown", two) is None


def test_an_ended_session_on_a_node_that_is_gone_or_not_ready_holds_nothing() -> None:
    """Its Pod may never report again (no kubelet), and nothing new can be placed there anyway."""
    for lose in ("deleted", "not ready"):
        s = ClusterState()
        s.on_node(node("n1"))
        s.on_execution(execution("x", 5, phase="RUNNING"))
        s.on_pod(pod("eb-x", "n1", "2", BROKER))
        s.on_execution(execution("x", 6, phase="FAILED"))
        assert "ns/x" in s.ledger
        if lose == "deleted":
            s.on_node(node("n1"), deleted=True)
        else:
            down = node("n1", ready=False)
            down["metadata"]["resourceVersion"] = "2"
            s.on_node(down)
        assert "ns/x" not in s.ledger, lose


def test_our_own_write_never_hides_a_newer_change_the_watch_brought() -> None:
    """The operator writes WAITING; before the response is back the watch delivers the client's
    cancel made after it. The write's response (older) must not replace the cancel."""
    s = ClusterState()
    s.on_node(node("n1"))
    s.on_execution(execution("x", 5, phase="ACCEPTED"))
    cancelled = execution("x", 7, phase="WAITING", desiredPhase="CANCELLED")
    s.on_execution(cancelled)
    ours = execution_view(execution("x", 6, phase="WAITING"))
    s.put(ours)
    held = s.executions["ns/x"]
    assert held.rv == 7
    assert held.desired == "CANCELLED"
