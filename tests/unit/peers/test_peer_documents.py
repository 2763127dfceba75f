"""A peer's answers are read like client input: its good offers are taken, each bad one is dropped
with its reason, and nothing a peer sends breaks the reading (or the OfferSet it ends up in)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.fuzz import examples
from tests.support.peers import PEER, offer_execution, offerset, request_model, session

from eb_operator.model import Dialect
from eb_operator.model.times import format_instant
from eb_operator.peers import PeerError
from eb_operator.peers.documents import (
    MAX_OFFER_BYTES,
    check_base_url,
    clean_text,
    read_offerset,
    read_session,
    same_origin,
    unstorable,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000


def read(doc: Any, dialect: Dialect = Dialect.IVOA_STD, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "base": PEER,
        "dialect": dialect,
        "now": NOW,
        "request": request_model(),
        "max_offers": 4,
        "max_ttl": 3600,
    }
    return read_offerset(doc, **(args | kw))


def two_offers(dialect: Dialect = Dialect.IVOA_STD) -> dict[str, Any]:
    return offerset(
        NOW, [offer_execution(0, NOW, start=600), offer_execution(1, NOW, start=90)], dialect=dialect
    )


@pytest.mark.parametrize("dialect", [Dialect.IVOA_STD, Dialect.C26], ids=["ivoa-std", "c26"])
def test_a_brokers_offers_are_taken_earliest_first_in_either_dialect(dialect: Dialect) -> None:
    answer = read(two_offers(dialect), dialect)
    assert answer.result == "YES"
    assert answer.dropped == ()
    assert [o.start - NOW for o in answer.offers] == [90, 600]
    first = answer.offers[0]
    assert first.session.endswith("02")
    assert first.href == f"{PEER}/sessions/{first.session}"
    assert first.expires == NOW + 300
    compute = first.document["resources"]["compute"][0]
    assert compute["cores"] == {"requested": {"min": 1}, "offered": {"min": 2, "max": 2}}
    assert first.document["schedule"]["executing"]["start"] == format_instant(NOW + 90) + "/PT0S"
    # the client's request is kept beside a C26 peer's offered values, as in an ivoa-std offer
    assert first.document["schedule"]["requested"] == {"duration": "PT10M"}
    assert set(first.document) <= {"name", "executable", "resources", "schedule", "messages"}


def test_at_most_max_offers_are_taken() -> None:
    answer = read(two_offers(), max_offers=1)
    assert [o.start - NOW for o in answer.offers] == [90]


def test_a_no_answer_carries_its_reasons_and_no_offers() -> None:
    doc = offerset(NOW, [])
    doc["messages"] = [{"level": "ERROR", "message": "no GPU\nhere", "type": "urn:x"}]
    answer = read(doc)
    assert (answer.result, answer.offers, answer.reasons) == ("NO", (), ("no GPU here",))


def test_the_offers_of_a_no_answer_are_ignored() -> None:
    doc = two_offers()
    doc["result"] = "NO"
    answer = read(doc)
    assert answer.offers == ()
    assert answer.dropped == ("2 offers of a NO answer ignored",)


def test_a_yaml_boolean_result_reads_as_the_model_reads_it() -> None:
    doc = two_offers()
    doc["result"] = True
    assert read(doc).result == "YES"


def _break(doc: dict[str, Any], index: int, change: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    change(out["offers"][index])
    return out


def _set(path: str, value: Any) -> Any:
    def change(offer: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        holder = offer
        for p in parents:
            holder = holder[int(p)] if isinstance(holder, list) else holder[p]
        if value is _DELETE:
            del holder[last]
        else:
            holder[last] = value

    return change


_DELETE = object()
LATE = format_instant(NOW - 1)

BAD_OFFERS: list[tuple[str, Any, str]] = [
    ("an offer that is not an object", lambda o: o.clear() or o.update({"x": 1}), "uuid: Field required"),
    ("an offer in another phase", _set("phase", "ACCEPTED"), "phase is ACCEPTED, not OFFERED"),
    ("an offer with no phase", _set("phase", _DELETE), "phase: Field required"),
    ("an offer with an unknown phase", _set("phase", "DANCING"), "DANCING is not a session phase"),
    ("an offer whose uuid is not a uuid", _set("uuid", "../../admin"), "uuid is not a UUID"),
    ("an offer reached at another host", _set("href", "https://evil.example.org/x"), "not at the peer's"),
    ("an offer reached over another scheme", _set("href", "http://peer.example.org/x"), "not at the peer's"),
    ("an offer reached with credentials", _set("href", "https://u:p@peer.example.org/x"), "own url"),
    ("an offer without an expiry", _set("expires", _DELETE), "no expires"),
    ("an offer that has expired", _set("expires", LATE), "already expired"),
    ("an offer with no offered start", _set("schedule/executing/start", _DELETE), "no offered start"),
    ("an offer with no schedule", _set("schedule", _DELETE), "no offered start"),
    ("an offer with no run time", _set("schedule/executing/duration", _DELETE), "no offered run time"),
    ("an offer shorter than asked", _set("schedule/executing/duration", "PT5M"), "less than the 600 s asked"),
    ("an offer with fewer cores than asked", _set("resources/compute/0/cores/offered/min", 0), "fewer than"),
    ("an offer with a string for a number", _set("resources/compute/0/cores/offered/min", "2"), "integer"),
    ("an offer whose min exceeds its max", _set("resources/compute/0/cores/offered", {"min": 9, "max": 2}),
     "min is more than max"),
    ("an offer with 33 access methods", _set("executable/access", [{"protocol": "H"}] * 33), "more than 32"),
    ("an offer too big to keep", _set("name", "x" * (MAX_OFFER_BYTES + 1)), f"larger than {MAX_OFFER_BYTES}"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "change", "reason"), BAD_OFFERS, ids=[c[0] for c in BAD_OFFERS])
def test_a_bad_offer_is_dropped_with_its_reason_and_its_sibling_kept(
    what: str, change: Any, reason: str
) -> None:
    answer = read(_break(two_offers(), 0, change))
    assert len(answer.offers) == 1, answer.dropped
    assert answer.offers[0].start == NOW + 90
    assert len(answer.dropped) == 1
    assert answer.dropped[0].startswith("offer 0: ")
    assert reason in answer.dropped[0]


def test_a_c26_offer_that_cannot_be_read_is_dropped_and_its_sibling_kept() -> None:
    doc = _break(two_offers(Dialect.C26), 0, _set("type", "urn:not-its-kind"))
    answer = read(doc, Dialect.C26)
    assert [o.start - NOW for o in answer.offers] == [90]
    assert answer.dropped == ("offer 0: uuid: Field required",)


def test_an_offer_starting_outside_every_requested_window_is_dropped() -> None:
    window = f"{format_instant(NOW + 500)}/PT10M"
    answer = read(two_offers(), request=request_model(start=[window]))
    assert [o.start - NOW for o in answer.offers] == [600]
    assert answer.dropped == ("offer 1: starts outside every requested start window",)


def test_a_peer_cannot_show_an_offer_for_longer_than_max_ttl() -> None:
    doc = _break(two_offers(), 1, _set("expires", format_instant(NOW + 10**8)))
    assert [o.expires - NOW for o in read(doc, max_ttl=60).offers] == [60, 60]


def test_fields_no_model_defines_are_not_kept() -> None:
    def extras(offer: dict[str, Any]) -> None:
        offer["evil"] = "x" * 1000
        offer["executable"]["script"] = "rm -rf /"
        offer["resources"]["compute"][0]["cores"]["offered"]["hidden"] = 1

    kept = read(_break(two_offers(), 1, extras)).offers[0].document
    text = json.dumps(kept)
    assert kept["resources"]["compute"][0]["cores"]["offered"] == {"min": 2, "max": 2}
    assert "evil" not in text
    assert "rm -rf" not in text
    assert "hidden" not in text


UNUSABLE: list[tuple[str, Any, str]] = [
    ("a list", [], "not an object"),
    ("a string", "YES", "not an object"),
    ("no result", {"offers": []}, "no result YES or NO"),
    ("a result that is not YES or NO", {"result": "MAYBE"}, "no result YES or NO"),
    ("offers that are not a list", {"result": "YES", "offers": {"a": 1}}, "not a list"),
    ("a document nested too deep", {"result": "YES", "x": json.loads("[" * 200 + "]" * 200)}, "nested"),
    ("a document with too many values", {"result": "YES", "x": [0] * 100_001}, "more than"),
    ("a url given twice", {"result": "YES", "href": "a", "meta": {"url": "b"}}, "given twice"),
]


@pytest.mark.parametrize(("what", "doc", "reason"), UNUSABLE, ids=[c[0] for c in UNUSABLE])
def test_an_unusable_answer_is_a_peer_error(what: str, doc: Any, reason: str) -> None:
    with pytest.raises(PeerError, match=reason):
        read(doc)


def test_only_the_first_64_offers_are_looked_at() -> None:
    doc = two_offers()
    doc["offers"] = doc["offers"] * 40
    answer = read(doc)
    assert "offers past the first 64 ignored" in answer.dropped
    assert len(answer.offers) == 4


@settings(max_examples=examples(200, 5000), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=30,
    ),
    st.sampled_from([Dialect.IVOA_STD, Dialect.C26]),
)
def test_whatever_a_peer_answers_the_reading_only_keeps_or_drops(doc: Any, dialect: Dialect) -> None:
    """Any JSON value as an answer, or as one offer of an otherwise good answer: the reader
    returns or raises PeerError, nothing else, and what it keeps can be stored."""
    for candidate in (doc, {**two_offers(), "offers": [doc, two_offers()["offers"][0]]}):
        try:
            answer = read(candidate, dialect)
        except PeerError:
            continue
        for offer in answer.offers:
            assert unstorable(offer.document) is None
            assert len(json.dumps(offer.document)) <= MAX_OFFER_BYTES


# --- sessions ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", [Dialect.IVOA_STD, Dialect.C26], ids=["ivoa-std", "c26"])
def test_a_sessions_phase_is_read_in_either_dialect(dialect: Dialect) -> None:
    offer = offer_execution(0, NOW)
    doc = session(NOW, offer, "READY", dialect=dialect)
    if dialect is Dialect.C26:
        assert doc["phase"] == "AVAILABLE"
    got = read_session(doc, dialect=dialect, session=offer["metadata"]["name"])
    assert got.phase == "READY"


def test_a_sessions_access_methods_and_messages_are_read() -> None:
    offer = offer_execution(0, NOW)
    doc = session(NOW, offer, "READY")
    doc["executable"]["access"] = [
        {"protocol": "HTTP", "status": "ACTIVE", "locations": ["http://x/"], "secret": "no"},
        {"protocol": 5},
    ]
    doc["messages"] = [{"level": "INFO", "message": "started\x1b[31m"}]
    got = read_session(doc, dialect=Dialect.IVOA_STD, session=offer["metadata"]["name"])
    assert got.access == ({"protocol": "HTTP", "status": "ACTIVE", "locations": ["http://x/"]},)
    assert got.messages == ("started [31m",)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca499", "phase": "RUNNING"}, "another session"),
        ({"phase": "ALIVE"}, "no valid phase"),
        ({}, "no valid phase"),
        ([], "not an object"),
    ],
    ids=["another session's document", "an unknown phase", "no phase", "not an object"],
)
def test_an_unusable_session_is_a_peer_error(doc: Any, reason: str) -> None:
    with pytest.raises(PeerError, match=reason):
        read_session(doc, dialect=Dialect.IVOA_STD, session="1b4e28ba-2fa1-11d2-883f-0016d3cca401")


# --- text and urls -------------------------------------------------------------------------


def test_a_peers_text_is_cleaned_and_bounded() -> None:
    assert clean_text("a\n\tb\x00c\u2028d") == "a b c d"
    assert clean_text("x" * 500, 10) == "x" * 9 + "…"


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://peer.example.org/sessions/1", True),
        ("https://PEER.example.org:443/x", True),
        ("http://peer.example.org/x", False),
        ("https://peer.example.org:8443/x", False),
        ("https://peer.example.org.evil.org/x", False),
        ("https://user@peer.example.org/x", False),
        ("//peer.example.org/x", False),
        ("/sessions/1", False),
        ("https://[::1/x", False),
    ],
)
def test_only_the_peers_own_origin_is_the_peers(url: str, same: bool) -> None:
    assert same_origin(url, PEER) is same


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://peer.example.org", None),
        ("http://10.0.0.1:8080/broker", None),
        ("ftp://peer.example.org", "http"),
        ("https://user:pw@peer.example.org", "password"),
        ("https://peer.example.org/?token=x", "query"),
        ("peer.example.org", "http"),
    ],
)
def test_a_peers_base_url_is_checked(url: str, problem: str | None) -> None:
    found = check_base_url(url)
    assert (found is None) if problem is None else (found is not None and problem in found)
