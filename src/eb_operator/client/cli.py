"""``ebctl``: ask an IVOA ExecutionBroker for offers, accept one, watch it run.

    ebctl offer --cores 2 --memory 4 --duration 10m --image eb-workload:latest -- sh -c 'echo hi'
    ebctl accept <session>          # or reject / cancel
    ebctl show <session|offerset>
    ebctl watch <session>           # one line per phase change, until a final phase
    ebctl open <session>            # a one-time login link: open it in a browser (a notebook, a web app)
    ebctl logs [-f] <session>       # what its workload printed (-f: as it prints it)

``--url``/``EB_URL`` names the broker, ``--token``/``EB_TOKEN`` the bearer token; ``-o`` chooses
table (default), yaml or json. Exit status: 0 done, 1 the broker said no (result NO, a refused
change, a session ending other than COMPLETED under ``watch``), 2 usage, 3 the broker could not
be used (HTTP or connection error), 4 ``watch`` timed out.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from eb_operator.client.http import JSON, YAML, BrokerClient, BrokerError, phase_of
from eb_operator.client.output import FORMATS, phase_line, render, start_of
from eb_operator.client.requests import offer_request
from eb_operator.model.common import FINAL_PHASES
from eb_operator.model.times import format_instant

EXIT_OK, EXIT_NO, EXIT_USAGE, EXIT_BROKER, EXIT_TIMEOUT = 0, 1, 2, 3, 4


def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    # Top-level defaults are real; sub-command copies are SUPPRESSed so they never overwrite
    # a value given before the sub-command (`ebctl -o json show X` and `ebctl show X -o json`).
    d: Callable[[Any], Any] = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument("--url", default=d(None), help="broker base URL (default: $EB_URL)")
    p.add_argument("--token", default=d(None), help="bearer token (default: $EB_TOKEN)")
    p.add_argument("-o", "--output", choices=FORMATS, default=d("table"), help="output format")
    p.add_argument("--timeout", type=float, default=d(60.0), help="HTTP timeout in seconds (default 60)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ebctl",
        description="Client of an IVOA ExecutionBroker (REST only).",
        epilog="Environment: EB_URL, EB_TOKEN.",
    )
    _common(p, top=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    offer = sub.add_parser(
        "offer",
        help="ask for offers (prints the offer set)",
        description="Ask for offers. Give the job with flags, or a whole request document with -f.",
    )
    _common(offer, top=False)
    offer.add_argument("-f", "--file", help="request document (YAML or JSON, ivoa-std or C26); '-' = stdin")
    offer.add_argument("--image", help="container image to run")
    offer.add_argument("--notebook", help="Jupyter notebook URL to serve (instead of --image)")
    offer.add_argument("--cores", default="1", help="cores: N or MIN-MAX (default 1)")
    offer.add_argument("--memory", default="1", help="memory in GiB: N or MIN-MAX (default 1)")
    offer.add_argument("--gpus", default=None, help="GPUs: N or MIN-MAX (default none)")
    offer.add_argument("--gpu-type", default=None, help="GPU flavour name or type URI")
    offer.add_argument("--duration", default=None, help="run time: ISO 8601 (PT1H) or 90m, 1h30m, 45s")
    offer.add_argument(
        "--start",
        action="append",
        default=[],
        help="start window (repeatable): ISO 8601 interval or instant, or now, +10m, now/2h, +10m/1h",
    )
    offer.add_argument("--name", default=None, help="a name for the request")
    offer.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="an env variable")
    offer.add_argument("--accept", action="store_true", help="accept the earliest offer right away")
    offer.add_argument("--watch", action="store_true", help="with --accept: then watch it to a final phase")
    offer.add_argument("command_args", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...] to run")

    for name, what in (
        ("accept", "accept an offer (its siblings are rejected)"),
        ("reject", "reject an offer"),
        ("cancel", "cancel an accepted or running session"),
    ):
        c = sub.add_parser(name, help=what, description=what.capitalize() + ".")
        _common(c, top=False)
        c.add_argument("session", help="session uuid or href")

    show = sub.add_parser("show", help="show a session or an offer set", description="Show a session or set.")
    _common(show, top=False)
    show.add_argument("ref", help="session or offer set uuid or href")
    show.add_argument("--offerset", action="store_true", help="the uuid names an offer set")

    watch = sub.add_parser(
        "watch", help="follow a session's phase until it is final", description="Follow a session."
    )
    _common(watch, top=False)
    watch.add_argument("session", help="session uuid or href")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    watch.add_argument("--for", dest="limit", type=float, default=None, help="give up after N seconds")

    opener = sub.add_parser(
        "open",
        help="print a one-time login link that opens a session in a browser",
        description="Print a one-time login link to a session's URL (a notebook's JupyterLab, a web app): "
        "opening it sets a cookie for the session's path and goes to the session. Valid once, for a minute.",
    )
    _common(opener, top=False)
    opener.add_argument("session", help="session uuid or href")
    opener.add_argument(
        "--wait",
        type=float,
        default=0.0,
        help="first wait up to N seconds for the session to be READY or RUNNING",
    )

    logs = sub.add_parser(
        "logs",
        help="print what a session's workload printed",
        description="Print a session's log (its workload container's); -f follows it while it runs.",
    )
    _common(logs, top=False)
    logs.add_argument("session", help="session uuid or href")
    logs.add_argument("-f", "--follow", action="store_true", help="stream new lines until the session ends")
    logs.add_argument("--tail", type=int, default=None, help="only the last N lines")
    return p


class Cli:
    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO, client: BrokerClient) -> None:
        self.args, self.out, self.err, self.eb = args, out, err, client

    def emit(self, doc: Mapping[str, Any]) -> None:
        print(render(doc, self.args.output), file=self.out)

    def offer(self) -> int:
        a = self.args
        if a.file:
            if a.image or a.notebook or a.command_args:
                raise ValueError("-f replaces --image/--notebook and a command; give one or the other")
            data = sys.stdin.buffer.read() if a.file == "-" else Path(a.file).read_bytes()
            ctype = JSON if a.file.endswith(".json") or data.lstrip()[:1] in (b"{", b"[") else YAML
            answer = self.eb.create_offerset(data, content_type=ctype)
        else:
            command = list(a.command_args)
            if command[:1] == ["--"]:
                command = command[1:]
            env = dict(_pair(e) for e in a.env)
            request = offer_request(
                image=a.image,
                notebook=a.notebook,
                command=command,
                cores=a.cores,
                memory=a.memory,
                gpus=a.gpus,
                gpu_type=a.gpu_type,
                duration=a.duration,
                start=a.start,
                name=a.name,
                environment=env or None,
            )
            answer = self.eb.create_offerset(request)
        offers = [o for o in answer.get("offers") or [] if isinstance(o, Mapping)]
        if not a.accept:
            self.emit(answer)
            return EXIT_OK if offers else EXIT_NO
        if not offers:
            self.emit(answer)
            return EXIT_NO
        first = min(offers, key=start_of)
        session = self.eb.accept(str(first.get("uuid") or first.get("href")))
        if a.watch:
            return self._watch(str(session.get("uuid") or first.get("uuid")), 1.0, None)
        self.emit(session)
        return EXIT_OK

    def update(self, phase: str) -> int:
        try:
            self.emit(self.eb.set_phase(self.args.session, phase))
        except BrokerError as e:
            if e.status == 409 and isinstance(e.document, Mapping):
                self.emit(e.document)
                print(f"ebctl: refused: {e.message}", file=self.err)
                return EXIT_NO
            raise
        return EXIT_OK

    def show(self) -> int:
        ref = self.args.ref
        if self.args.offerset or "/offersets/" in ref:
            self.emit(self.eb.offerset(ref))
            return EXIT_OK
        try:
            self.emit(self.eb.session(ref))
        except BrokerError as e:
            if e.status != 404 or "/sessions/" in ref:
                raise
            self.emit(self.eb.offerset(ref))
        return EXIT_OK

    def watch(self) -> int:
        return self._watch(self.args.session, self.args.interval, self.args.limit)

    def open(self) -> int:
        a = self.args
        if a.wait > 0:
            for doc in self.eb.watch(a.session, interval=1.0, timeout=a.wait):
                phase = phase_of(doc)
                if phase in ("READY", "RUNNING"):
                    break
                if phase in FINAL_PHASES:
                    print(f"ebctl: the session is {phase}", file=self.err)
                    return EXIT_NO
        link = self.eb.login(a.session)
        if a.output == "table":
            print(link.get("url"), file=self.out)
        else:
            self.emit(link)
        return EXIT_OK

    def _watch(self, ref: str, interval: float, limit: float | None) -> int:
        last: Mapping[str, Any] = {}
        for doc in self.eb.watch(ref, interval=interval, timeout=limit):
            last = doc
            if self.args.output == "table":
                now = format_instant(int(time.time()))
                print(phase_line(doc, now), file=self.out, flush=True)
            elif self.args.output == "json":
                print(render(doc, "json").replace("\n", "").replace("  ", ""), file=self.out, flush=True)
            else:
                print("---\n" + render(doc, "yaml"), file=self.out, flush=True)
        phase = phase_of(last)
        return EXIT_OK if phase == "COMPLETED" else EXIT_NO if phase in FINAL_PHASES else EXIT_TIMEOUT

    def logs(self) -> int:
        ref, tail = self.args.session, self.args.tail
        if not self.args.follow:
            self.out.write(self.eb.logs(ref, tail))
            self.out.flush()
            return EXIT_OK
        while True:
            got = False
            for chunk in self.eb.follow_logs(ref, tail):
                got = got or bool(chunk)
                self.out.write(chunk)
                self.out.flush()
            # the stream ends when the container does, or when the broker stopped waiting for it
            # to start: then ask again, unless the session is over
            if got or phase_of(self.eb.session(ref)) in FINAL_PHASES:
                return EXIT_OK


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--env takes NAME=VALUE, got {text!r}")
    return name, value


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    url = args.url or os.environ.get("EB_URL", "")
    token = args.token or os.environ.get("EB_TOKEN") or None
    if not url:
        print("ebctl: no broker URL: give --url or set EB_URL", file=err)
        return EXIT_USAGE
    try:
        with BrokerClient(url, token, timeout=args.timeout, transport=transport) as eb:
            cli = Cli(args, out, err, eb)
            if args.command == "offer":
                return cli.offer()
            if args.command in ("accept", "reject", "cancel"):
                phase = {"accept": "ACCEPTED", "reject": "REJECTED", "cancel": "CANCELLED"}[args.command]
                return cli.update(phase)
            if args.command == "show":
                return cli.show()
            if args.command == "open":
                return cli.open()
            if args.command == "logs":
                return cli.logs()
            return cli.watch()
    except BrokerError as e:
        print(f"ebctl: {e}", file=err)
        return EXIT_BROKER
    except TimeoutError as e:
        print(f"ebctl: {e}", file=err)
        return EXIT_TIMEOUT
    except (ValueError, OSError) as e:
        print(f"ebctl: {e}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
