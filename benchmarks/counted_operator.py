"""Run the operator with two counters for the benchmarks (a development aid, like profile_operator.py).

    python benchmarks/counted_operator.py NAMESPACE PLATFORM LIVENESS_PORT OUT.json

* every request the operator makes to the API server (kopf and kubernetes_asyncio both send through
  ``aiohttp.ClientSession._request``), counted by verb and resource; watches are counted apart;
* every timed phase of the operator (``OperatorContext.timed``: decide, answer, ...) as single
  samples, so a benchmark can report p50/p99 rather than the liveness probe's means.

Both are written to OUT.json once a second (and at exit). The apiserver's own metrics carry no
client label, so counting in the client is the way to tell the operator's load from kwok's.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from eb_operator.operator.context import OperatorContext
from operator_run import run_operator

COUNTS: dict[str, int] = {}
SAMPLES: dict[str, list[float]] = {}


def _kind(method: str, url: Any) -> str:
    """``GET executions`` / ``PATCH executions/status`` / ``WATCH nodes``: the verb and resource."""
    parts = urlsplit(str(url))
    segs = [s for s in parts.path.split("/") if s]
    # /api/v1/... or /apis/group/version/...; then optional namespaces/<ns>; then plural[/name[/sub]]
    rest = segs[2:] if segs[:1] == ["api"] else segs[3:]
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]
    resource = rest[0] if rest else "/".join(segs) or "?"
    if len(rest) > 2:
        resource += "/" + rest[2]
    verb = method.upper()
    if verb == "GET" and "watch=true" in parts.query.lower():
        verb = "WATCH"
    elif verb == "GET" and len(rest) == 1:
        verb = "LIST"
    return f"{verb} {resource}"


_original_request = aiohttp.ClientSession._request


async def _counted_request(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
    key = _kind(method, url)
    COUNTS[key] = COUNTS.get(key, 0) + 1
    return await _original_request(self, method, url, **kwargs)


_original_timed = OperatorContext.timed


@contextlib.contextmanager
def _sampled_timed(self: OperatorContext, phase: str) -> Iterator[None]:
    t = time.perf_counter()
    with _original_timed(self, phase):
        yield
    SAMPLES.setdefault(phase, []).append(time.perf_counter() - t)


def _dump(out: Path) -> None:
    doc = {"requests": dict(COUNTS), "samples": {k: list(v) for k, v in SAMPLES.items()}}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)


def _dumper(out: Path) -> None:
    while True:
        time.sleep(1)
        with contextlib.suppress(RuntimeError):  # a dict grew while copied: next second
            _dump(out)


if __name__ == "__main__":
    namespace, platform, port, out_file = sys.argv[1:5]
    out = Path(out_file)
    aiohttp.ClientSession._request = _counted_request  # type: ignore[method-assign,assignment]
    OperatorContext.timed = _sampled_timed  # type: ignore[method-assign]
    threading.Thread(target=_dumper, args=(out,), daemon=True).start()
    try:
        run_operator(namespace, platform, port)
    finally:
        _dump(out)
