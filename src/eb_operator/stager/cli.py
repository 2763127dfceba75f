"""The stager's command line: one transfer per run, one summary line on success, one line naming
the location and the cause on failure (exit 1). Either line is also written to the container's
termination message file: the operator quotes a failure in the session's messages, and reports a
delivery's summary (files and bytes) on its storage item."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from eb_operator.stager.common import StageError, Tally

TERMINATION_LOG = "/dev/termination-log"

USAGE = """\
stager [in] http URL DEST_DIR
stager [in] s3 [--addressing-style path|virtual|auto] ENDPOINT BUCKET KEY_OR_PREFIX DEST_DIR
stager [in] rucio HOST SCOPE:NAME DEST_DIR
stager out s3 [--addressing-style path|virtual|auto] ENDPOINT BUCKET PREFIX SRC_DIR
stager out http URL SRC_DIR
stager out webdav URL SRC_DIR"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise StageError(f"usage: {message}\n{USAGE}")


def _parser() -> argparse.ArgumentParser:
    root = _Parser(prog="stager", usage=USAGE, add_help=False)
    kinds = root.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    http = kinds.add_parser("http")
    http.add_argument("url")
    http.add_argument("dir")
    s3 = kinds.add_parser("s3")
    s3.add_argument("--addressing-style", default="path", choices=["path", "virtual", "auto"])
    s3.add_argument("endpoint")
    s3.add_argument("bucket")
    s3.add_argument("key")
    s3.add_argument("dir")
    rucio = kinds.add_parser("rucio")
    rucio.add_argument("host")
    rucio.add_argument("did")
    rucio.add_argument("dir")
    webdav = kinds.add_parser("webdav")
    webdav.add_argument("url")
    webdav.add_argument("dir")
    return root


def _transfer(direction: str, args: argparse.Namespace) -> Tally:
    # imported here so that a usage error costs no boto3 import, and an image without the
    # Rucio client still stages everything else
    if direction == "in":
        if args.kind == "http":
            from eb_operator.stager import web

            return web.stage_in(args.url, args.dir)
        if args.kind == "s3":
            from eb_operator.stager import s3

            return s3.stage_in(
                args.endpoint, args.bucket, args.key, args.dir, addressing=args.addressing_style
            )
        if args.kind == "rucio":
            from eb_operator.stager import rucio_dids

            return rucio_dids.stage_in(args.host, args.did, args.dir)
    else:
        if args.kind == "s3":
            from eb_operator.stager import s3

            return s3.stage_out(
                args.endpoint, args.bucket, args.key, args.dir, addressing=args.addressing_style
            )
        if args.kind == "http":
            from eb_operator.stager import web

            return web.stage_out(args.url, args.dir)
        if args.kind == "webdav":
            from eb_operator.stager import web

            return web.stage_out_webdav(args.url, args.dir)
    raise StageError(f"usage: stager {direction} cannot move {args.kind}\n{USAGE}")


def _terminate_with(line: str, termination_log: str) -> None:
    """``line`` as the container's termination message (where there is such a file)."""
    if os.path.exists(termination_log):
        try:
            with open(termination_log, "w") as f:
                f.write(line)
        except OSError:
            pass  # the log line is the fallback


def _report_failure(line: str, termination_log: str) -> None:
    print(line, file=sys.stderr, flush=True)
    _terminate_with(line, termination_log)


def main(
    argv: Sequence[str], termination_log: str = TERMINATION_LOG, out: Callable[[str], None] = print
) -> int:
    """Run one transfer; the exit code: 0 done, 1 failed, 2 bad usage."""
    words = list(argv)
    direction = "in"
    if words and words[0] in ("in", "out"):
        direction = words.pop(0)
    verb = "staged" if direction == "in" else "staged out"
    try:
        args = _parser().parse_args(words)
    except StageError as e:
        print(str(e), file=sys.stderr)
        return 2
    try:
        tally = _transfer(direction, args)
    except StageError as e:
        _report_failure(f"staging {'out ' if direction == 'out' else ''}failed: {e}", termination_log)
        return 1
    line = tally.summary(verb)
    out(line)
    _terminate_with(line, termination_log)
    return 0
