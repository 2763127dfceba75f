"""Request documents from command-line style values: ``offer_request(cores=2, memory=4, ...)``.

Written in the normative ivoa-std dialect (digest §0.1), which every conformant broker reads.
GPUs use the ``gpus`` compute extension (docs/wire-model.md, "GPUs").
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eb_operator.model import times

STD = "https://www.purl.org/ivoa.net/EB/schema/types/"
DOCKER = STD + "executables/docker-container-1.0"
JUPYTER = STD + "executables/jupyter-notebook-1.0"
COMPUTE = STD + "resources/compute/simple-compute-resource-1.0"

Range = tuple[int, int | None]

_SHORT_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_range(text: str | int, what: str = "value") -> Range:
    """``"4"`` -> (4, None); ``"4-8"`` or ``"4:8"`` -> (4, 8); memory may end in ``G``/``Gi``/``GiB``."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{what} must be 0 or more, got {text}")
        return text, None
    cleaned = re.sub(r"(?i)(gib|gi|gb|g)$", "", text.strip()).strip()
    m = re.fullmatch(r"(\d+)(?:\s*[-:]\s*(\d+))?", cleaned)
    if m is None:
        raise ValueError(f"{what}: expected N or MIN-MAX in whole numbers, got {text!r}")
    low, high = int(m[1]), (int(m[2]) if m[2] else None)
    if high is not None and high < low:
        raise ValueError(f"{what}: the maximum {high} is below the minimum {low}")
    return low, high


def parse_duration(text: str) -> str:
    """An ISO 8601 duration (``PT1H30M``) as it is, or a short one (``90m``, ``1h30m``, ``45s``,
    ``2d``, a bare number of seconds) converted to ISO 8601. Either is read by
    :mod:`eb_operator.model.times`, as the broker reads it (a fraction of a second rounds up); a
    run time must be longer than zero."""
    text = text.strip()
    if text.upper().startswith(("P", "-P")):
        try:
            seconds = times.parse_duration(text.upper())
        except times.Iso8601Error as e:
            raise ValueError(f"duration: {e}") from None
        _positive(seconds)
        return text.upper()
    if re.fullmatch(r"\d+", text):
        return times.format_duration(_positive(int(text)))
    parts = _SHORT_PART.findall(text.lower())
    if not parts or "".join(n + u for n, u in parts) != text.lower().replace(" ", ""):
        raise ValueError(f"duration: expected ISO 8601 (PT1H) or e.g. 90m, 1h30m, 45s; got {text!r}")
    seconds = math.ceil(sum(float(n) * _SECONDS[u] for n, u in parts))
    return times.format_duration(_positive(seconds))


def _positive(seconds: int) -> int:
    if seconds <= 0:
        raise ValueError("duration must be positive")
    return seconds


def parse_start(text: str, now: datetime | None = None) -> str:
    """A start window for ``schedule.requested.start``.

    ISO 8601 intervals and instants pass unchanged (``2026-08-14T09:00Z/PT3H``). Relative forms
    are resolved against ``now`` (UTC): ``now``, ``+10m`` (an exact start), ``now/PT1H`` and
    ``+10m/2h`` (a window that opens then and stays open that long).
    """
    text = text.strip()
    head, sep, tail = text.partition("/")
    if head.lower() != "now" and not head.startswith("+"):
        return text
    offset = 0 if head.lower() == "now" else times.parse_duration(parse_duration(head[1:]))
    start = times.format_instant(times.to_epoch(now or datetime.now(UTC)) + offset)
    if not sep:
        return start
    return f"{start}/{parse_duration(tail)}"


def _requested(r: Range) -> dict[str, int]:
    low, high = r
    return {"min": low} if high is None else {"min": low, "max": high}


def offer_request(
    *,
    image: str | None = None,
    command: Sequence[str] = (),
    notebook: str | None = None,
    cores: Range | int | str = 1,
    memory: Range | int | str = 1,
    gpus: Range | int | str | None = None,
    gpu_type: str | None = None,
    duration: str | None = None,
    start: Sequence[str] = (),
    name: str | None = None,
    environment: dict[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An ivoa-std ``OfferSetRequest`` for one container (``image``, optional ``command``: the first
    item is the entrypoint) or one Jupyter notebook (``notebook`` URL)."""
    if (image is None) == (notebook is None):
        raise ValueError("give exactly one of an image or a notebook")
    executable: dict[str, Any]
    if image is not None:
        executable = {"type": DOCKER, "image": {"locations": [image]}}
        if command:
            executable["entrypoint"] = command[0]
            if len(command) > 1:
                executable["command"] = list(command[1:])
        if environment:
            executable["environment"] = dict(environment)
    else:
        if command:
            raise ValueError("a notebook takes no command")
        executable = {"type": JUPYTER, "location": notebook}
    compute: dict[str, Any] = {
        "type": COMPUTE,
        "name": "compute",
        "cores": {"requested": _requested(_as_range(cores, "cores"))},
        "memory": {"requested": _requested(_as_range(memory, "memory"))},
    }
    if gpus is not None:
        g = _as_range(gpus, "gpus")
        if g[0] > 0 or gpu_type:
            compute["gpus"] = {"requested": _requested(g)}
            if gpu_type:
                key = "type" if "://" in gpu_type else "name"
                compute["gpus"][key] = gpu_type
    elif gpu_type:
        compute["gpus"] = {"requested": {"min": 1}, ("type" if "://" in gpu_type else "name"): gpu_type}
    doc: dict[str, Any] = {
        "executable": {"name": "executable", **executable},
        "resources": {"compute": [compute]},
    }
    if name:
        doc = {"name": name, **doc}
    requested: dict[str, Any] = {}
    if duration:
        requested["duration"] = parse_duration(duration)
    if start:
        requested["start"] = [parse_start(s, now) for s in start]
    if requested:
        doc["schedule"] = {"requested": requested}
    return doc


def _as_range(value: Range | int | str, what: str) -> Range:
    if isinstance(value, tuple):
        return value
    return parse_range(value, what)
