"""Rendering broker documents for people (a table) and programs (YAML, JSON).

Tables read both dialects: ivoa-std (``resources.compute[0].cores.offered``) and Calycopis 2026
(``meta.uuid``, a flat ``compute.cores``), since a request file may be written in either.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

FORMATS = ("table", "yaml", "json")


@dataclass(frozen=True)
class SessionRow:
    uuid: str
    phase: str
    start: str
    duration: str
    cores: str
    memory: str
    gpus: str
    expires: str


def _get(doc: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(doc, Sequence) or isinstance(doc, str) or len(doc) <= key:
                return None
            doc = doc[key]
        else:
            if not isinstance(doc, Mapping):
                return None
            doc = doc.get(key)
    return doc


def uuid_of(doc: Mapping[str, Any]) -> str:
    return str(doc.get("uuid") or _get(doc, "meta", "uuid") or "")


def _compute(doc: Mapping[str, Any]) -> Any:
    return _get(doc, "resources", "compute", 0) or doc.get("compute")


def amount(block: Any) -> str:
    """``"4"`` or ``"4-8"`` from an offered block (``{offered: {min, max}}``) or a flat ``{min, max}``."""
    if isinstance(block, int):
        return str(block)
    if not isinstance(block, Mapping):
        return "-"
    inner = block.get("offered") or block.get("requested") or block
    if isinstance(inner, int):
        return str(inner)
    low, high = _get(inner, "min"), _get(inner, "max")
    if low is None and high is None:
        count = _get(inner, "count")
        return str(count) if count is not None else "-"
    if high is None or high == low:
        return str(low)
    return f"{low}-{high}"


def _start(doc: Mapping[str, Any]) -> tuple[str, str]:
    sched = doc.get("schedule")
    item = _get(sched, "executing") or _get(sched, "available") or {}
    start = str(_get(item, "start") or "-")
    if start.endswith("/PT0S"):
        start = start[: -len("/PT0S")]
    return start, str(_get(item, "duration") or "-")


def start_of(doc: Mapping[str, Any]) -> str:
    """When an offer starts, as sortable text (RFC 3339 UTC); unknown starts sort last."""
    start = _start(doc)[0]
    return "~" if start == "-" else start


def session_row(doc: Mapping[str, Any]) -> SessionRow:
    compute = _compute(doc)
    start, duration = _start(doc)
    gpus = _get(compute, "gpus")
    gpu_text = amount(gpus) if gpus else "0"
    label = _get(gpus, "product") or _get(gpus, "name")
    if gpus and label:
        gpu_text += f" ({label})"
    return SessionRow(
        uuid=uuid_of(doc),
        phase=str(doc.get("phase") or doc.get("state") or "-"),
        start=start,
        duration=duration,
        cores=amount(_get(compute, "cores")),
        memory=amount(_get(compute, "memory")),
        gpus=gpu_text,
        expires=str(doc.get("expires") or _get(doc, "meta", "expires") or "-"),
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in body) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in body)


SESSION_HEADERS = ("SESSION", "PHASE", "START", "DURATION", "CORES", "MEMORY(GiB)", "GPUS", "EXPIRES")


def _row_cells(r: SessionRow) -> tuple[str, ...]:
    return (r.uuid, r.phase, r.start, r.duration, r.cores, r.memory, r.gpus, r.expires)


def _messages(doc: Mapping[str, Any]) -> list[str]:
    found = doc.get("messages")
    if found is None:
        found = _get(doc, "meta", "messages")
    out = []
    for m in found or []:
        if isinstance(m, Mapping):
            out.append(f"{m.get('level', 'INFO')}: {m.get('message') or m.get('template') or ''}".rstrip())
    return out


def session_table(doc: Mapping[str, Any]) -> str:
    text = table(SESSION_HEADERS, [_row_cells(session_row(doc))])
    options = [
        ", ".join(str(v) for v in (o.get("values") or []))
        for o in (doc.get("options") or _get(doc, "meta", "options") or [])
        if isinstance(o, Mapping)
    ]
    lines = [text]
    if any(options):
        lines.append("may become: " + "; ".join(o for o in options if o))
    lines += _messages(doc)
    return "\n".join(lines)


def offerset_table(doc: Mapping[str, Any]) -> str:
    result = doc.get("result")
    if result is True or result is False:  # a YAML 1.1 reader's YES/NO
        result = "YES" if result else "NO"
    head = f"offer set {uuid_of(doc)}: {result or '-'}"
    offers = [o for o in doc.get("offers") or [] if isinstance(o, Mapping)]
    lines = [head]
    if offers:
        lines.append(table(SESSION_HEADERS, [_row_cells(session_row(o)) for o in offers]))
    lines += _messages(doc)
    return "\n".join(lines)


def is_offerset(doc: Mapping[str, Any]) -> bool:
    return "result" in doc or "offers" in doc


def render(doc: Mapping[str, Any], fmt: str) -> str:
    """One document as ``table``, ``yaml`` or ``json`` (no trailing newline)."""
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=False)
    if fmt == "yaml":
        return yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True).rstrip("\n")
    if fmt == "table":
        return offerset_table(doc) if is_offerset(doc) else session_table(doc)
    raise ValueError(f"unknown output format {fmt!r}: use one of {', '.join(FORMATS)}")


def phase_line(doc: Mapping[str, Any], at: str) -> str:
    """One line of ``ebctl watch``: time, session, phase and the newest message."""
    r = session_row(doc)
    msgs = _messages(doc)
    return f"{at}  {r.uuid}  {r.phase}" + (f"  {msgs[-1]}" if msgs else "")
