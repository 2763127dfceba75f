"""A peer broker that misbehaves on purpose: a real HTTP server on 127.0.0.1 (the standard
library's, in a thread) whose answers to ``POST /offersets`` are chosen by the test: broken JSON,
huge or deeply nested documents, offers reached elsewhere, redirects away, errors, silence past
the deadline. ``/availability`` says it is available, so a broker asks it; every request's
headers are kept for the test to read."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.peers import offer_execution, offerset

AVAILABLE = (
    b'<?xml version="1.0"?><vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
    b"<vosi:available>true</vosi:available></vosi:availability>"
)

#: What ``POST /offersets`` answers, by mode: (status, content type, body) or a callable of the
#: server's own URL giving them.
MODES = (
    "good",
    "broken-json",
    "huge",
    "deep",
    "yaml",
    "elsewhere",
    "slow",
    "error",
    "redirect-away",
    "not-an-object",
    "one-good-one-bad",
)


class _QuietServer(ThreadingHTTPServer):
    """A broker dropping the connection (its deadline passed, the answer too big) is expected
    here: not a traceback in the test's output."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HostilePeer:
    def __init__(self) -> None:
        self.mode = "good"
        self.seen: list[dict[str, str]] = []  # the headers of every request, in order
        self.connections: set[socket.socket] = set()  # open ones: a stopped peer closes them too
        self.slow_seconds = 10.0
        server = _QuietServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    def answer(self) -> tuple[int, str, bytes, dict[str, str]]:
        now = int(time.time())
        good = offerset(now, [offer_execution(0, now, start=60)], base=self.url)
        match self.mode:
            case "good":
                return 200, "application/json", json.dumps(good).encode(), {}
            case "broken-json":
                return 200, "application/json", b'{"result": "YES", "offers": [', {}
            case "huge":
                return 200, "application/json", b'{"result": "YES", "x": "' + b"x" * (2 << 20) + b'"}', {}
            case "deep":
                return 200, "application/json", b"[" * 100_000 + b"]" * 100_000, {}
            case "yaml":
                return 200, "application/yaml", b"result: YES\noffers: []\n", {}
            case "elsewhere":
                moved = offerset(now, [offer_execution(0, now, start=60)], base="http://127.0.0.2:9")
                return 200, "application/json", json.dumps(moved).encode(), {}
            case "slow":
                time.sleep(self.slow_seconds)
                return 200, "application/json", json.dumps(good).encode(), {}
            case "error":
                body = {"messages": [{"level": "ERROR", "message": "disk on fire\n\x1b[31mreally"}]}
                return 500, "application/json", json.dumps(body).encode(), {}
            case "redirect-away":
                return 303, "text/plain", b"", {"Location": "http://127.0.0.2:9/offersets/x"}
            case "not-an-object":
                return 200, "application/json", b'"YES"', {}
            case "one-good-one-bad":
                two = offerset(
                    now, [offer_execution(0, now, start=60), offer_execution(1, now, start=70)], base=self.url
                )
                two["offers"][1]["phase"] = "RUNNING"
                return 200, "application/json", json.dumps(two).encode(), {}
        raise AssertionError(self.mode)


def _handler(peer: HostilePeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, kind: str, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def setup(self) -> None:
            super().setup()
            peer.connections.add(self.connection)

        def finish(self) -> None:
            super().finish()
            peer.connections.discard(self.connection)

        def do_GET(self) -> None:
            peer.seen.append(dict(self.headers.items()))
            if self.path == "/availability":
                self._send(200, "text/xml", AVAILABLE)
            else:
                self._send(404, "application/json", b'{"messages": [{"level": "ERROR", "message": "no"}]}')

        def do_POST(self) -> None:
            peer.seen.append(dict(self.headers.items()))
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, kind, body, headers = peer.answer()
            self._send(status, kind, body, headers)

    return Handler


@contextlib.contextmanager
def hostile_peer() -> Iterator[HostilePeer]:
    peer = HostilePeer()
    thread = threading.Thread(target=peer.server.serve_forever, name="hostile-peer", daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        peer.server.shutdown()
        peer.server.server_close()
        for conn in list(peer.connections):  # a kept-alive connection would go on answering
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        thread.join(10)
