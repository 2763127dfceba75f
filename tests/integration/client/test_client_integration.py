"""ebctl and BrokerClient against the real REST service (uvicorn on 127.0.0.1) and a real operator,
on kwok nodes of their own (tests/integration/api/stack.py), over real HTTP."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.api.stack import Broker, Shape, broker_stack
from tests.support.kube import Kubectl

from eb_operator.client import BrokerClient, BrokerError
from eb_operator.client.cli import main

SHAPE = Shape(nodes=1, cores=8, memory_gib=32, gpus=2, offer_ttl=60)
IMAGE = "eb-workload:latest"
C26_REQUEST = """\
executable:
  kind: https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml
  image: {locations: ['eb-workload:latest']}
compute:
  kind: https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml
  cores: {min: 2}
  memory: {min: 4}
schedule: {requested: {duration: PT10M}}
"""


@pytest.fixture(scope="module")
def broker(kube: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with broker_stack(kube, tmp_path_factory.mktemp("operator") / "operator.log", SHAPE) as b:
        yield b


@pytest.fixture
def eb(broker: Broker) -> Iterator[Broker]:
    yield broker
    broker.cleanup()


def ebctl(eb: Broker, *argv: str, user: str = "alice") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", eb.url, "--token", eb.tokens[user], *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def offer(eb: Broker, *flags: str) -> dict[str, Any]:
    code, out, err = ebctl(eb, "-o", "json", "offer", "--image", IMAGE, "--duration", "10m", *flags)
    answer: dict[str, Any] = json.loads(out)
    assert code == (0 if answer["result"] == "YES" else 1), err
    return answer


def test_offer_accept_show_cancel_watch(eb: Broker) -> None:
    answer = offer(eb, "--cores", "2-4", "--memory", "4", "--start", "+10m/1h", "--", "sleep", "600")
    assert answer["result"] == "YES"
    first = min(answer["offers"], key=lambda o: o["schedule"]["executing"]["start"])
    code, out, _ = ebctl(eb, "-o", "json", "accept", first["href"])  # an href works as well as a uuid
    assert code == 0
    assert json.loads(out)["phase"] in ("ACCEPTED", "WAITING")
    code, out, _ = ebctl(eb, "show", first["uuid"])
    assert code == 0
    assert first["uuid"] in out
    assert "CANCELLED" in out.splitlines()[2], "the table lists what the session may become"
    assert ebctl(eb, "cancel", first["uuid"])[0] == 0
    code, out, _ = ebctl(eb, "watch", first["uuid"], "--interval", "0.2", "--for", "60")
    assert code == 1, "a session that ends other than COMPLETED is exit 1"
    assert out.split()[-1] == "CANCELLED"


def test_a_refused_change_is_exit_1_with_the_unchanged_session(eb: Broker) -> None:
    answer = offer(eb)
    uuid = answer["offers"][0]["uuid"]
    assert ebctl(eb, "reject", uuid)[0] == 0
    code, out, err = ebctl(eb, "-o", "yaml", "accept", uuid)
    assert code == 1
    assert "phase: REJECTED" in out
    assert "REJECTED" in err


def test_offer_accept_in_one_step(eb: Broker) -> None:
    code, out, err = ebctl(
        eb, "-o", "json", "offer", "--image", IMAGE, "--duration", "5m", "--accept", "--", "true"
    )
    assert code == 0, err
    assert json.loads(out)["phase"] in ("ACCEPTED", "WAITING", "PREPARING", "READY", "RUNNING")


def test_a_c26_request_file_and_its_table(eb: Broker, tmp_path: Path) -> None:
    f = tmp_path / "request.yaml"
    f.write_text(C26_REQUEST)
    code, out, err = ebctl(eb, "offer", "-f", str(f))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(": YES")
    assert lines[1].split()[:2] == ["SESSION", "PHASE"]
    row = lines[2].split()
    assert row[1] == "OFFERED"
    assert row[4] == "2", "cores read from the C26 answer"


def test_gpus_are_asked_for_and_offered(eb: Broker) -> None:
    answer = offer(eb, "--gpus", "2")
    assert answer["result"] == "YES", answer
    assert {o["resources"]["compute"][0]["gpus"]["offered"]["min"] for o in answer["offers"]} == {2}
    answer = offer(eb, "--gpus", "3")
    assert answer["result"] == "NO", "no node has 3 GPUs"


def test_show_an_offer_set_and_other_callers(eb: Broker) -> None:
    answer = offer(eb)
    code, out, _ = ebctl(eb, "-o", "json", "show", answer["uuid"])
    assert code == 0
    assert json.loads(out)["uuid"] == answer["uuid"]
    code, _, err = ebctl(eb, "show", answer["uuid"], "--offerset", user="bob")
    assert code == 3
    assert "HTTP 404" in err


def test_the_client_library_watch_ends_on_a_final_phase(eb: Broker) -> None:
    with BrokerClient(eb.url, eb.tokens["alice"]) as c:
        answer = c.create_offerset(
            {
                "executable": {
                    "type": "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0",
                    "image": {"locations": [IMAGE]},
                },
                "resources": {
                    "compute": [
                        {
                            "type": "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-resource-1.0"
                        }
                    ]
                },
            }
        )
        uuid = answer["offers"][0]["uuid"]
        c.reject(uuid)
        assert [d["phase"] for d in c.watch(uuid, interval=0.2, timeout=30)] == ["REJECTED"]
        with pytest.raises(BrokerError) as e:
            c.cancel(uuid)
        assert e.value.status == 409
        assert e.value.document["phase"] == "REJECTED"
