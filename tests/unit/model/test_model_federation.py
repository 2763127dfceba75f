"""The EB-Via header of stacked brokers: a loop or too long a chain is refused, a malformed header
is a 400, and a request is forwarded only within the hop limit."""

from __future__ import annotations

import pytest

from eb_operator.model import RequestError
from eb_operator.model.federation import (
    MAX_VIA_IDS,
    format_via,
    forwarded_via,
    loop_refusal,
    parse_via,
    valid_broker_id,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("header", "ids"),
    [
        (None, ()),
        ("", ()),
        ("  ", ()),
        ("a", ("a",)),
        ("site-a.example.org, site-b:8443 ,c/d", ("site-a.example.org", "site-b:8443", "c/d")),
        ("eb@x+1", ("eb@x+1",)),
    ],
)
def test_a_via_header_reads_as_its_broker_ids(header: str | None, ids: tuple[str, ...]) -> None:
    assert parse_via(header) == ids
    if ids:
        assert parse_via(format_via(ids)) == ids


@pytest.mark.parametrize(
    "header",
    ["a,,b", "a b", "-a", "a;b", "ä", "x" * 254, ",".join(["a"] * (MAX_VIA_IDS + 1))],
    ids=[
        "an empty id",
        "a space",
        "a leading dash",
        "a semicolon",
        "not ascii",
        "too long an id",
        "too many",
    ],
)
def test_a_malformed_via_header_is_a_request_error_naming_it(header: str) -> None:
    with pytest.raises(RequestError) as caught:
        parse_via(header)
    assert caught.value.path == "EB-Via"


CASES = [
    ("a client's own request is served", (), "b", 3, None),
    ("a request from a peer is served", ("a",), "b", 3, None),
    ("a request back at a broker it passed is a loop", ("a", "b"), "a", 3, "forwarding loop"),
    ("a request back at the broker it came from is a loop", ("a",), "a", 3, "forwarding loop"),
    ("a chain just at the limit is served", ("a", "b", "c"), "d", 3, None),
    ("a chain past the limit is refused", ("a", "b", "c", "d"), "e", 3, "hop limit"),
    ("with no hops allowed, any forwarded request is refused", ("a",), "b", 0, "hop limit"),
]


@pytest.mark.parametrize(("what", "via", "own", "hops", "refused"), CASES, ids=[c[0] for c in CASES])
def test_loops_and_long_chains_are_refused(
    what: str, via: tuple[str, ...], own: str, hops: int, refused: str | None
) -> None:
    reason = loop_refusal(via, own, hops)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert reason.startswith(refused)
        assert own in reason or "limit" in reason


def test_a_request_is_forwarded_only_within_the_hop_limit() -> None:
    assert forwarded_via((), "a", 3) == ("a",)
    assert forwarded_via(("a", "b"), "c", 3) == ("a", "b", "c")
    assert forwarded_via(("a", "b", "c"), "d", 3) is None
    assert forwarded_via((), "a", 0) is None


def test_what_a_broker_forwards_its_peer_serves_and_a_loop_is_refused_where_it_closes() -> None:
    """A -> B -> A: B serves what A forwards; what B forwards back, A refuses."""
    to_b = forwarded_via((), "A", 3)
    assert to_b is not None
    assert loop_refusal(to_b, "B", 3) is None
    to_a = forwarded_via(to_b, "B", 3)
    assert to_a is not None
    assert loop_refusal(to_a, "A", 3) is not None


@pytest.mark.parametrize(
    ("text", "ok"), [("a", True), ("site.example.org", True), ("", False), ("a,b", False)]
)
def test_a_broker_id_is_a_token(text: str, ok: bool) -> None:
    assert valid_broker_id(text) is ok
