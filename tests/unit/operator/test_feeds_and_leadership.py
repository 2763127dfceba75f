"""Who decides (kopf's peering rule, read from the peering object's status), paused work queues, and the
feeds' watch streams (lines, 410 Gone, the newest resourceVersion)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from eb_operator.cluster.crs import Cluster
from eb_operator.cluster.feeds import Expired, Feed, _lines
from eb_operator.operator.leadership import Leadership, judge
from eb_operator.operator.workqueue import WorkQueue

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)


def peer(priority: int = 0, seen_ago: float = 5, lifetime: int = 60) -> dict[str, object]:
    seen = (NOW - timedelta(seconds=seen_ago)).isoformat()
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen}


@pytest.mark.parametrize(
    ("peers", "leads"),
    [
        pytest.param({}, True, id="alone"),
        pytest.param({"me": peer()}, True, id="only itself"),
        pytest.param({"me": peer(), "other": peer(priority=-1)}, True, id="a lower priority peer"),
        pytest.param({"me": peer(), "other": peer()}, False, id="the same priority: both pause"),
        pytest.param({"me": peer(), "other": peer(priority=5)}, False, id="a higher priority peer"),
        pytest.param({"me": peer(), "other": peer(priority=5, seen_ago=61)}, True, id="a dead peer"),
        pytest.param({"other": {"priority": 0}}, False, id="no lastseen: as if seen now"),
    ],
)
def test_an_operator_leads_unless_a_live_peer_has_a_priority_at_least_its_own(
    peers: dict[str, object], leads: bool
) -> None:
    assert judge(peers, "me", 0, NOW).leads is leads


def test_a_paused_operator_looks_again_when_its_blocker_would_lapse() -> None:
    verdict = judge({"a": peer(seen_ago=50), "b": peer(seen_ago=10)}, "me", 0, NOW)
    assert verdict.blockers == ("a", "b")
    assert verdict.recheck_in == pytest.approx(10)


async def test_leadership_follows_the_peering_object() -> None:
    changes: list[bool] = []
    standalone = Leadership("me", 0, None, changes.append)
    standalone.start()
    assert changes == [True]

    changes.clear()
    lead = Leadership("me", 0, "eb-operator", changes.append, clock=lambda: NOW)
    lead.start()
    assert changes == [], "with peering it waits for the peering object"
    body = {"metadata": {"name": "eb-operator"}, "status": {"me": peer()}}
    lead.on_peering(body, False)
    assert changes == [True]
    lead.on_peering({"metadata": {"name": "other-peering"}, "status": {"x": peer(9)}}, False)
    assert changes == [True], "another peering object is not ours"
    lead.on_peering({**body, "status": {"me": peer(), "rival": peer()}}, False)
    assert changes == [True, False]
    lead.on_peering(body, True)
    assert lead.leading is False
    lead.stop()


async def test_a_paused_queue_drops_what_it_is_given_until_resumed() -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def handle(key: str) -> None:
        seen.append(key)
        done.set()

    q: WorkQueue[str] = WorkQueue("t", handle, 1)
    q.add("a")
    q.add_after("b", 60)
    q.pause()
    q.add("c")
    assert len(q) == 0
    q.resume()
    q.add("d")
    q.start()
    await asyncio.wait_for(done.wait(), 5)
    await q.stop()
    assert seen == ["d"]


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_chunked(self, n: int):  # type: ignore[no-untyped-def]
        for c in self.chunks:
            yield c


async def test_a_watch_stream_is_split_into_lines_of_any_length() -> None:
    long = b"x" * 200_000
    chunks = [b'{"a":1}\n{"b":', b"2}\n" + long[:100_000], long[100_000:] + b"\n\n", b'{"c":3}']
    lines = [line async for line in _lines(_Content(chunks), chunk=1024)]
    assert lines == [b'{"a":1}', b'{"b":2}', long, b'{"c":3}']


class _Response:
    def __init__(self, status: int, lines: list[bytes]) -> None:
        self.status = status
        self.reason = "x"
        self.content = _Content([b"\n".join(lines) + b"\n"])

    async def text(self) -> str:
        return ""

    def release(self) -> None:
        pass


class _Cluster:
    def __init__(self, responses: list[_Response]) -> None:
        self.responses = responses

    async def stream_raw(self, path: str, query: dict[str, str], total: float) -> _Response:
        return self.responses.pop(0)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(_Response(410, []), id="410 status"),
        pytest.param(_Response(200, [b'{"type":"ERROR","object":{"code":410}}']), id="410 in the stream"),
    ],
)
async def test_a_watch_whose_resource_version_expired_asks_for_a_new_listing(response: _Response) -> None:
    feed = Feed(cast(Cluster, _Cluster([response])), "/api/v1/pods", lambda o, d: None)
    feed.resource_version = "10"
    with pytest.raises(Expired):
        await feed._watch()


async def test_a_watch_delivers_events_in_order_and_keeps_the_newest_resource_version() -> None:
    lines = [
        b'{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"11"}}}',
        b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"15"}}}',
        b'{"type":"DELETED","object":{"metadata":{"name":"a","namespace":"n","resourceVersion":"16"}}}',
    ]
    got: list[tuple[str, bool]] = []
    feed = Feed(
        cast(Cluster, _Cluster([_Response(200, lines)])),
        "/x",
        lambda o, d: got.append((o["metadata"]["name"], d)),
    )
    feed.resource_version = "10"
    await feed._watch()
    assert got == [("a", False), ("a", True)]
    assert feed.resource_version == "16"
    assert feed.stats.events == 2
