"""Requests, responses and checks shared by the REST integration tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import yaml
from tests.integration.api.ivoa_schema_check import validate, validate_c26
from tests.support.reservations import holding_spans, live_at_starts
from tests.support.wire import C26, COMPUTE, DOCKER, STD, STORAGE
from tests.support.wire import JUPYTER as NOTEBOOK
from tests.support.wire import S3_DATA as S3
from tests.support.wire import SIMPLE_DATA as DATA

from eb_operator.model import times

JSON_H = {"Content-Type": "application/json", "Accept": "application/json"}
YAML_H = {"Content-Type": "application/yaml", "Accept": "application/yaml"}

KNOWN_TYPES = {
    DOCKER,
    NOTEBOOK,
    STD + "executables/singularity-container-1.0",
    COMPUTE,
    STORAGE,
    DATA,
    S3,
    STD + "resources/data/Rucio-data-resource-1.0",
    STD + "offersets/offerset-response-1.0",
    STD + "sessions/execution-session-response-1.0",
    "uri:enum-value-option",
    "uri:string-value-option",
    "uri:integer-value-option",
    "uri:integer-delta-option",
}
DURATION = re.compile(
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
INTERVAL = re.compile(
    r"^(\d{4}(?:-\d{2}){2}T\d{2}(?::\d{2}){2}(?>[^\/]+))\/"
    r"(P(?=.)(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?=.)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)$"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def docker_request(
    cores: int = 1,
    memory: int = 1,
    *,
    max_cores: int | None = None,
    duration: str | None = "PT1H",
    start: list[str] | None = None,
    name: str = "rest-test",
    storage: int | None = None,
    executable_type: str = DOCKER,
    compute_type: str = COMPUTE,
) -> dict[str, Any]:
    cores_block: dict[str, Any] = {"min": cores}
    if max_cores is not None:
        cores_block["max"] = max_cores
    req: dict[str, Any] = {
        "name": name,
        "executable": {
            "type": executable_type,
            "name": "app",
            "image": {"locations": ["eb-workload:latest"]},
            "entrypoint": "sleep",
        },
        "resources": {
            "compute": [
                {
                    "type": compute_type,
                    "name": "compute-1",
                    "cores": {"requested": cores_block},
                    "memory": {"requested": {"min": memory}},
                }
            ]
        },
    }
    if storage is not None:
        req["resources"]["storage"] = [
            {"type": STORAGE, "name": "scratch", "size": {"requested": {"min": storage}}}
        ]
    schedule: dict[str, Any] = {}
    if duration is not None:
        schedule["duration"] = duration
    if start is not None:
        schedule["start"] = start
    if schedule:
        req["schedule"] = {"requested": schedule}
    return req


def c26_request(cores: int = 1, memory: int = 1, duration: str = "PT1H") -> dict[str, Any]:
    return {
        "executable": {
            "kind": C26 + "executable/docker-container.yaml",
            "image": {"locations": ["eb-workload:latest"]},
        },
        "compute": {
            "kind": C26 + "compute/simple-compute-resource.yaml",
            "cores": {"min": cores},
            "memory": {"min": memory},
        },
        "schedule": {"requested": {"duration": duration}},
    }


def body(r: httpx.Response) -> Any:
    ctype = r.headers.get("content-type", "")
    if "json" in ctype:
        return json.loads(r.content)
    return yaml.safe_load(r.content)


def post(
    client: httpx.Client, path: str, doc: Mapping[str, Any], headers: Mapping[str, str] = JSON_H
) -> httpx.Response:
    content = json.dumps(doc) if "json" in headers.get("Content-Type", "json") else yaml.safe_dump(dict(doc))
    return client.post(path, content=content, headers=dict(headers))


def create(
    client: httpx.Client, doc: Mapping[str, Any], headers: Mapping[str, str] = JSON_H
) -> dict[str, Any]:
    """POST /offersets; asserts the 303 contract and returns the validated OfferSetResponse."""
    r = post(client, "/offersets", doc, headers)
    assert r.status_code == 303, r.text
    out: dict[str, Any] = body(r)
    assert r.headers["location"] == out["href"]
    check_offerset(out)
    return out


def offers_of(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The offers of a YES answer: a check over them cannot pass on an empty list (or a NO)."""
    assert doc["result"] == "YES", doc.get("messages")
    offers: list[dict[str, Any]] = doc["offers"]
    assert offers, "a YES holds at least one offer"
    return offers


def update(client: httpx.Client, href: str, value: str, **extra: Any) -> httpx.Response:
    return client.post(
        href,
        json={"update": {"type": "uri:enum-value-update", "path": "phase", "value": value, **extra}},
        headers={"Accept": "application/json"},
    )


def get(client: httpx.Client, href: str) -> dict[str, Any]:
    r = client.get(href, headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def check_offerset(doc: Mapping[str, Any]) -> None:
    """The official schema, plus what the schema cannot say (digest checklist 13-16, 21-22, 35-37)."""
    validate(doc, "OfferSetResponse")
    assert doc["result"] in ("YES", "NO")
    if doc["result"] == "YES":
        assert doc["offers"]
    else:
        assert doc.get("messages")
    for offer in doc.get("offers") or []:
        check_session(offer)
    check_encodings(doc)


def check_c26(doc: Mapping[str, Any], name: str) -> None:
    """The Calycopis 2026 schema, for answers in the C26 dialect."""
    validate_c26(doc, name)
    check_encodings(doc, c26=True)


def check_session(doc: Mapping[str, Any]) -> None:
    validate(doc, "ExecutionSessionResponse")
    for key in ("uuid", "href", "type", "phase"):
        assert key in doc, key
    check_encodings(doc)


def check_encodings(doc: Any, c26: bool = False) -> None:
    """Every duration, interval and timestamp well-formed; every discriminator known; every
    message with a level (checklist 35-37)."""
    for path, key, value in walk(doc):
        if key in ("created", "expires", "time"):
            assert RFC3339.match(value), (path, value)
        elif key == "duration":
            assert DURATION.match(value), (path, value)
        elif key == "start" and "requested" not in path and not c26:
            assert INTERVAL.match(value), (path, value)
        elif key == "type" and "messages" not in path and "access" not in path and not c26:
            assert value in KNOWN_TYPES, (path, value)
        elif key == "kind" and c26 and "messages" not in path:
            assert value.startswith((C26, "uri:")), (path, value)
    for _, key, value in walk(doc, leaves=False):
        if key == "messages":
            for m in value:
                assert m.get("level") in {"DEBUG", "WARN", "ERROR", "INFO", "OTHER"}, m


def walk(
    doc: Any, path: tuple[Any, ...] = (), leaves: bool = True
) -> Iterable[tuple[tuple[Any, ...], str, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            if not leaves or not isinstance(v, dict | list):
                yield path, k, v
            yield from walk(v, (*path, k), leaves)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from walk(v, (*path, i), leaves)


def parse_duration(text: str) -> timedelta:
    return timedelta(seconds=times.parse_duration(text))


def interval(text: str) -> tuple[datetime, datetime]:
    window = times.IsoInterval.parse(text)
    assert window.start is not None, text
    return times.from_epoch(window.start), times.from_epoch(window.start + window.seconds)


def offered_start(offer: Mapping[str, Any]) -> datetime:
    return interval(offer["schedule"]["executing"]["start"])[0]


def next_slot(after: datetime, slot: int = 300, lead: timedelta = timedelta(hours=1)) -> datetime:
    t = int((after + lead).timestamp())
    return datetime.fromtimestamp(t - t % slot + slot, tz=UTC)


def fmt(t: datetime) -> str:
    return times.format_instant(times.to_epoch(t))


def over_capacity(
    executions: Iterable[Mapping[str, Any]], cores: int, memory_gib: int, gpus: int
) -> list[str]:
    """An independent check of the cluster state (not the engine's): at no instant does the sum of
    the reservations holding capacity on one node exceed that node's cores, memory or GPUs."""
    problems = []
    for node, spans in holding_spans(executions).items():
        for t, live in live_at_starts(spans):
            used = (
                sum(int(r.get("cores", 0)) for r in live),
                sum(int(r.get("memoryGiB", 0)) for r in live),
                sum(int(r.get("gpus", 0)) for r in live),
            )
            if used[0] > cores or used[1] > memory_gib or used[2] > gpus:
                problems.append(f"{node} at {fmt(t)}: {used} > {(cores, memory_gib, gpus)}")
    return problems
