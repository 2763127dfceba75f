"""``ebctl`` arguments, exit codes and HTTP handling, against a tiny scripted REST peer.

The peer (an ``httpx.MockTransport``) only replays the IVOA interface's shapes so that the
client's own logic can be pinned: redirects, refusals, polling. The client against the real
broker is tested in tests/integration/client and tests/e2e.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from eb_operator.client import BrokerClient, BrokerError
from eb_operator.client.cli import main, parser

pytestmark = pytest.mark.unit

URL = "http://broker.test"


def session(uuid: str, phase: str) -> dict[str, Any]:
    start = {"executing": {"start": "2030-01-01T10:00:00Z/PT0S", "duration": "PT1H"}}
    return {"uuid": uuid, "href": f"{URL}/sessions/{uuid}", "phase": phase, "schedule": start}


def later(uuid: str) -> dict[str, Any]:
    """An offer that starts two hours after s1."""
    return {**session(uuid, "OFFERED"), "schedule": {"executing": {"start": "2030-01-01T12:00:00Z/PT0S"}}}


@dataclass
class Peer:
    """A scripted broker: ``phases`` is what successive GETs of session s1 answer."""

    phases: list[str] = field(default_factory=lambda: ["OFFERED"])
    create_body: bool = True
    requests: list[httpx.Request] = field(default_factory=list)
    streams: list[list[str]] = field(default_factory=list)  # what successive follow=true GETs send

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.headers.get("authorization") not in (None, "Bearer good"):
            return self.error(401, "unknown token")
        if request.method == "POST" and path == "/offersets":
            body = {
                "uuid": "set1",
                "href": f"{URL}/offersets/set1",
                "result": "YES",
                "offers": [later("s2"), session("s1", "OFFERED")],
            }
            content = json.dumps(body).encode() if self.create_body else b""
            return httpx.Response(
                303,
                headers={"location": "/offersets/set1", "content-type": "application/json"},
                content=content,
            )
        if request.method == "GET" and path == "/offersets/set1":
            return httpx.Response(
                200, json={"uuid": "set1", "result": "YES", "offers": [session("s1", "OFFERED")]}
            )
        if request.method == "GET" and path == "/sessions/s1":
            phase = self.phases.pop(0) if len(self.phases) > 1 else self.phases[0]
            return httpx.Response(200, json=session("s1", phase))
        if request.method == "GET" and path == "/sessions/s1/logs":
            if request.url.params.get("follow") == "true":
                # a first stream that ends before the container started (nothing), then the lines
                chunks = self.streams.pop(0) if self.streams else []
                return httpx.Response(200, text="".join(chunks), headers={"content-type": "text/plain"})
            tail = request.url.params.get("tail")
            lines = ["one\n", "two\n", "three\n"]
            return httpx.Response(200, text="".join(lines[-int(tail) :] if tail else lines))
        if request.method == "POST" and path == "/sessions/s1":
            value = json.loads(request.content)["update"]["value"]
            if value == "CANCELLED":
                doc = session("s1", "OFFERED")
                doc["messages"] = [
                    {"level": "ERROR", "message": "Cannot change phase from OFFERED to CANCELLED"}
                ]
                return httpx.Response(409, json=doc)
            return httpx.Response(200, json=session("s1", value))
        if request.method == "POST" and path == "/sessions/s1/login":
            phase = self.phases[0]
            if phase not in ("PREPARING", "READY", "RUNNING"):
                return self.error(409, f"Session s1 cannot be opened in a browser now: it has phase {phase}")
            link = {"url": f"{URL}/session/notebook/s1/lab?eb-login=c0de", "expires": "2030-01-01T10:01:00Z"}
            return httpx.Response(200, json=link)
        return self.error(404, "no such thing")

    @staticmethod
    def error(status: int, message: str) -> httpx.Response:
        return httpx.Response(status, json={"messages": [{"level": "ERROR", "message": message}]})


@pytest.fixture
def peer() -> Peer:
    return Peer()


def run(peer: Peer, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--url", URL, "--token", "good", *argv], out=out, err=err, transport=httpx.MockTransport(peer.handle)
    )
    return code, out.getvalue(), err.getvalue()


def test_options_may_come_before_or_after_the_command() -> None:
    a = parser().parse_args(["-o", "json", "show", "x"])
    b = parser().parse_args(["show", "x", "-o", "json"])
    c = parser().parse_args(["show", "x"])
    assert (a.output, b.output, c.output) == ("json", "json", "table")


def test_url_and_token_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, peer: Peer) -> None:
    monkeypatch.setenv("EB_URL", URL)
    monkeypatch.setenv("EB_TOKEN", "good")
    out = io.StringIO()
    assert main(["show", "s1"], out=out, err=io.StringIO(), transport=httpx.MockTransport(peer.handle)) == 0
    assert peer.requests[0].headers["authorization"] == "Bearer good"


def test_without_a_url_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EB_URL", raising=False)
    err = io.StringIO()
    assert main(["show", "x"], out=io.StringIO(), err=err) == 2
    assert "EB_URL" in err.getvalue()


def test_offer_sends_an_ivoa_request_and_prints_the_set(peer: Peer) -> None:
    code, out, _ = run(
        peer, "offer", "--cores", "2", "--memory", "4", "--image", "img", "--", "sh", "-c", "true"
    )
    sent = json.loads(peer.requests[0].content)
    assert code == 0
    assert sent["executable"]["entrypoint"] == "sh"
    assert sent["executable"]["command"] == ["-c", "true"]
    assert peer.requests[0].headers["content-type"] == "application/json"
    assert out.splitlines()[0] == "offer set set1: YES"


def test_a_303_without_a_body_is_followed(peer: Peer) -> None:
    peer.create_body = False
    code, out, _ = run(peer, "-o", "json", "offer", "--image", "img")
    assert code == 0
    assert json.loads(out)["uuid"] == "set1"
    assert [r.method for r in peer.requests] == ["POST", "GET"]


def test_offer_from_a_yaml_file_sends_it_as_written(peer: Peer, tmp_path: Any) -> None:
    f = tmp_path / "req.yaml"
    f.write_text("executable: {type: x}\n")
    assert run(peer, "offer", "-f", str(f))[0] == 0
    assert peer.requests[0].content == b"executable: {type: x}\n"
    assert peer.requests[0].headers["content-type"] == "application/yaml"


def test_offer_accept_accepts_the_earliest_offer(peer: Peer) -> None:
    code, out, _ = run(peer, "-o", "json", "offer", "--image", "img", "--accept")
    assert code == 0
    assert peer.requests[-1].url.path == "/sessions/s1", "s1 starts before s2, which is listed first"
    assert json.loads(out)["phase"] == "ACCEPTED"
    assert json.loads(peer.requests[-1].content)["update"] == {
        "type": "uri:enum-value-update",
        "path": "phase",
        "value": "ACCEPTED",
    }


def test_a_refused_change_prints_the_session_and_exits_1(peer: Peer) -> None:
    code, out, err = run(peer, "-o", "json", "cancel", f"{URL}/sessions/s1")
    assert code == 1
    assert json.loads(out)["phase"] == "OFFERED"
    assert "Cannot change phase from OFFERED to CANCELLED" in err


def test_show_falls_back_to_an_offer_set(peer: Peer) -> None:
    code, out, _ = run(peer, "-o", "json", "show", "set1")
    assert code == 0
    assert json.loads(out)["result"] == "YES"


def test_a_bad_token_is_exit_3_with_the_brokers_message(peer: Peer) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--url", URL, "--token", "bad", "show", "s1"],
        out=out,
        err=err,
        transport=httpx.MockTransport(peer.handle),
    )
    assert code == 3
    assert "HTTP 401: unknown token" in err.getvalue()


def test_an_unreachable_broker_is_exit_3() -> None:
    err = io.StringIO()
    code = main(["--url", "http://127.0.0.1:9", "show", "s1", "--timeout", "2"], out=io.StringIO(), err=err)
    assert code == 3
    assert "cannot reach the broker" in err.getvalue()


@pytest.mark.parametrize(
    ("phases", "code"),
    [
        pytest.param(["ACCEPTED", "WAITING", "WAITING", "RUNNING", "COMPLETED"], 0, id="completed is exit 0"),
        pytest.param(["RUNNING", "FAILED"], 1, id="failed is exit 1"),
    ],
)
def test_watch_prints_each_phase_change_once(
    phases: list[str], code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    p = Peer(phases=list(phases))
    got, out, _ = run(p, "watch", "s1", "--interval", "0")
    assert got == code
    assert [line.split()[2] for line in out.splitlines()] == list(dict.fromkeys(phases))


def test_watch_gives_up_after_its_limit() -> None:
    ticks: Iterator[float] = iter([0.0, 5.0, 11.0])
    eb = BrokerClient(URL, transport=httpx.MockTransport(Peer(phases=["RUNNING"]).handle))
    stream = eb.watch("s1", timeout=10, clock=lambda: next(ticks), sleep=lambda _s: None)
    assert next(stream)["phase"] == "RUNNING"
    with pytest.raises(TimeoutError, match="still RUNNING after 10 s"):
        next(stream)


def test_an_error_carries_the_document() -> None:
    eb = BrokerClient(URL, transport=httpx.MockTransport(Peer().handle))
    with pytest.raises(BrokerError) as e:
        eb.session("nope")
    assert (e.value.status, e.value.message) == (404, "no such thing")
    assert e.value.document == {"messages": [{"level": "ERROR", "message": "no such thing"}]}


def test_open_prints_the_login_link_once_the_session_is_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    p = Peer(phases=["PREPARING", "PREPARING", "READY"])
    got, out, _ = run(p, "open", "s1", "--wait", "60")
    assert (got, out) == (0, f"{URL}/session/notebook/s1/lab?eb-login=c0de\n")
    assert [(r.method, r.url.path) for r in p.requests][-2:] == [
        ("GET", "/sessions/s1"),
        ("POST", "/sessions/s1/login"),
    ]
    got, out, _ = run(Peer(phases=["RUNNING"]), "-o", "json", "open", "s1")
    assert json.loads(out)["expires"] == "2030-01-01T10:01:00Z"


def test_open_says_why_a_session_cannot_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.sleep", lambda _s: None)
    got, _, err = run(Peer(phases=["WAITING"]), "open", "s1")
    assert got == 3
    assert "cannot be opened in a browser now: it has phase WAITING" in err
    got, _, err = run(Peer(phases=["PREPARING", "COMPLETED"]), "open", "s1", "--wait", "60")
    assert (got, err) == (1, "ebctl: the session is COMPLETED\n")


def test_logs_prints_what_the_workload_printed_and_its_tail(peer: Peer) -> None:
    assert run(peer, "logs", "s1") == (0, "one\ntwo\nthree\n", "")
    assert run(peer, "logs", "s1", "--tail", "1") == (0, "three\n", "")
    assert peer.requests[-1].url.params["tail"] == "1"


def test_logs_follow_asks_again_until_something_came_or_the_session_is_over(peer: Peer) -> None:
    peer.streams = [[], ["hello\n", "world\n"]]
    peer.phases = ["RUNNING"]
    assert run(peer, "logs", "-f", "s1") == (0, "hello\nworld\n", "")
    follows = [r for r in peer.requests if r.url.params.get("follow") == "true"]
    assert len(follows) == 2  # the first stream ended empty while the session still ran
    peer.streams, peer.phases, peer.requests = [[]], ["COMPLETED"], []
    assert run(peer, "logs", "-f", "s1") == (0, "", "")


def test_logs_of_someone_elses_session_is_an_error(peer: Peer) -> None:
    code, _, err = run(peer, "logs", "nope")
    assert code == 3
    assert "no such thing" in err
