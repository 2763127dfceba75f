"""The whole chain once: POST an offer set, read it, accept an offer."""

from __future__ import annotations

from tests.integration.api.conftest import Broker
from tests.integration.api.helpers import check_session, create, docker_request, get, update


def test_offer_accept_roundtrip(eb: Broker) -> None:
    with eb.client() as c:
        answer = create(c, docker_request(cores=1))
        assert answer["result"] == "YES", answer
        offer = answer["offers"][0]
        r = update(c, offer["href"], "ACCEPTED")
        assert r.status_code == 200, r.text
        check_session(r.json())
        assert r.json()["phase"] in ("ACCEPTED", "WAITING", "PREPARING")
        again = get(c, answer["href"])
        assert {o["phase"] for o in again["offers"][1:]} <= {"REJECTED"}
