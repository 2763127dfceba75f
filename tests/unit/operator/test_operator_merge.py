"""One answer from many sites: this broker's offers and its peers', ranked, named and bounded."""

from __future__ import annotations

from typing import Any

import pytest

from eb_operator.model.times import format_instant
from eb_operator.operator.builders.merge import Merged, PeerAnswer, merge_answers
from eb_operator.peers import RemoteOffer

pytestmark = pytest.mark.unit

NOW = 1_800_000_000
SET = {"name": "1b4e28ba-2fa1-11d2-883f-0016d3cca400", "uid": "u"}


def local(i: int, start: int) -> dict[str, Any]:
    name = f"{SET['name'][:-2]}{i + 1:02x}"
    return {"name": name, "uuid": name, "reservation": {"node": "n", "start": format_instant(NOW + start)}}


def remote(session: str, start: int, expires: int = 300) -> RemoteOffer:
    return RemoteOffer(
        session=f"00000000-0000-0000-0000-0000000000{session}",
        href=f"https://peer/sessions/{session}",
        expires=NOW + expires,
        start=NOW + start,
        document={"name": session},
    )


def where(merged: Merged) -> list[str]:
    """Each offer as 'local@start' or '<peer>:<session>@start'."""
    out = []
    for o in merged.offers:
        if "reservation" in o:
            out.append(f"local@{o['reservation']['start'][11:19]}")
        else:
            out.append(f"{o['peer']['name']}:{o['peer']['session'][-2:]}@{o['peer']['start'][11:19]}")
    return out


def test_without_peers_offers_the_local_answer_is_as_it_was() -> None:
    own = [local(0, 600), local(1, 60)]
    merged = merge_answers(SET, own, NOW + 300, [{"level": "INFO"}], [], NOW)
    assert merged == Merged(own, NOW + 300, [{"level": "INFO"}])
    assert [o["name"][-2:] for o in merged.offers] == ["01", "02"]  # the engine's order kept


def test_offers_are_ranked_by_start_then_preference_then_local_first() -> None:
    own = [local(0, 600), local(1, 60)]
    peers = [
        PeerAnswer("b", 0, (remote("b1", 60), remote("b2", 30))),
        PeerAnswer("c", 5, (remote("c1", 60), remote("c2", 900))),
    ]
    merged = merge_answers(SET, own, NOW + 300, [], peers, NOW)
    assert where(merged) == [
        "b:b2@08:00:30",  # earliest start
        "c:c1@08:01:00",  # same start as two others: the higher preference first
        "local@08:01:00",  # ... then this broker's own
        "b:b1@08:01:00",
        "local@08:10:00",
        "c:c2@08:15:00",
    ]
    # local offers keep their names; peers' get the next free numbers, in rank order
    assert [o["name"][-2:] for o in merged.offers] == ["03", "04", "02", "05", "01", "06"]
    assert all(o["uuid"] == o["name"] for o in merged.offers)


def test_a_peer_offer_says_where_it_is_held_and_what_was_offered() -> None:
    merged = merge_answers(SET, [], None, [], [PeerAnswer("b", 0, (remote("b1", 60, expires=200),))], NOW)
    assert merged.offers == [
        {
            "name": f"{SET['name'][:-2]}01",
            "uuid": f"{SET['name'][:-2]}01",
            "peer": {
                "name": "b",
                "session": "00000000-0000-0000-0000-0000000000b1",
                "href": "https://peer/sessions/b1",
                "expires": format_instant(NOW + 200),
                "start": format_instant(NOW + 60),
            },
            "offered": {"name": "b1"},
        }
    ]
    assert merged.expires == NOW + 200


def test_the_sets_expiry_is_the_local_one_else_the_earliest_peer_offers() -> None:
    peers = [PeerAnswer("b", 0, (remote("b1", 60, 500), remote("b2", 70, 400)))]
    assert merge_answers(SET, [local(0, 10)], NOW + 300, [], peers, NOW).expires == NOW + 300
    assert merge_answers(SET, [], None, [], peers, NOW).expires == NOW + 400


def test_peers_offers_fill_the_set_up_to_its_bound_and_the_rest_is_said() -> None:
    own = [local(0, 600)]
    peers = [PeerAnswer("b", 0, tuple(remote(f"{i:02d}", i) for i in range(40)))]
    merged = merge_answers(SET, own, NOW + 300, [], peers, NOW, max_offers=32)
    assert len(merged.offers) == 32
    assert sum("reservation" in o for o in merged.offers) == 1  # this broker's own always stays
    assert sorted(o["name"][-2:] for o in merged.offers) == [f"{i:02x}" for i in range(1, 33)]
    assert merged.messages[-1]["message"] == "9 offers of peer brokers left out: a set holds at most 32"


def test_the_peers_messages_follow_this_brokers() -> None:
    warn = {"level": "WARN", "message": "peer c: no answer within 2 s"}
    peers = [PeerAnswer("b", 0, (remote("b1", 60),)), PeerAnswer("c", 0, (), (warn,))]
    merged = merge_answers(SET, [local(0, 10)], NOW + 300, [{"level": "INFO", "message": "m"}], peers, NOW)
    assert merged.messages == [{"level": "INFO", "message": "m"}, warn]


def test_when_only_peers_offer_this_brokers_reasons_are_warnings_about_its_platform() -> None:
    no = {"level": "ERROR", "type": "urn:ivoa:eb:resource-limit", "message": "64 cores are more than 32"}
    merged = merge_answers(SET, [], None, [no], [PeerAnswer("b", 0, (remote("b1", 60),))], NOW)
    assert merged.messages == [
        {
            "level": "WARN",
            "type": "urn:ivoa:eb:resource-limit",
            "message": "this broker's own platform: 64 cores are more than 32",
        }
    ]


def test_when_nobody_offers_the_reasons_stay_errors() -> None:
    no = {"level": "ERROR", "message": "too big"}
    warn = {"level": "WARN", "message": "peer b: refused"}
    merged = merge_answers(SET, [], None, [no], [PeerAnswer("b", 0, (), (warn,))], NOW)
    assert merged == Merged([], None, [no, warn])
